from importlib.util import find_spec

from django.urls import include, path

from . import views

urlpatterns = [
    path("notes/", views.add_note, name="add-note"),
    path("messages/", views.show_messages, name="show-messages"),
]

if find_spec("myshop") is not None:  # the code of docs/django.md, written out by the tests
    urlpatterns.append(path("", include("myshop.urls")))

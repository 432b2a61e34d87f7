"""Views of the test project: enqueue inside a request's transaction, show messages."""

from __future__ import annotations

from django.contrib import messages
from django.db import transaction
from django.http import HttpRequest, HttpResponse
from django.views.decorators.http import require_POST

from tasktable.contrib.django import add_background_notice

from .notes.models import Note
from .tasks import count_notes


@require_POST
def add_note(request: HttpRequest) -> HttpResponse:
    """Save a note and enqueue a task in one transaction; ``fail=1`` fails after both."""
    alias = request.POST.get("alias", "default")
    with transaction.atomic(using=alias):
        Note.objects.using(alias).create(text=request.POST["text"])
        result = count_notes.using(backend=alias).enqueue(alias)
        add_background_notice(request, result)
        if request.POST.get("fail"):
            raise RuntimeError("the view failed after enqueueing")
    return HttpResponse(result.id)


def show_messages(request: HttpRequest) -> HttpResponse:
    lines = [f"{m.level_tag}|{m.extra_tags}|{m.message}" for m in messages.get_messages(request)]
    return HttpResponse("\n".join(lines), content_type="text/plain")

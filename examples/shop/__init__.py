"""The seed's example as a small shop admin (Flask): orders, the "Set delivered" mass
action (inline for a few orders, in the background above a threshold, with the
notice), and an "Export orders to CSV" task whose action link downloads the file
from the dashboard. Run it with ``make example`` (``python -m examples.shop``).
"""

"""The Textual dashboard (``claudeswarm monitor``): agents, locks, tasks and a bounded ring
of recent messages, live and read-only.

Only this package imports Textual, and only :mod:`claudeswarm.monitor.app` and the widget
modules do: :mod:`~claudeswarm.monitor.data`, :mod:`~claudeswarm.monitor.feed` and
:mod:`~claudeswarm.monitor.unread` are plain Python, so ``--once --json`` never pays for
the UI. Build the app with :func:`claudeswarm.monitor.app.create_app`.
"""

"""Tailing: from files on disk to complete lines, exactly once, through rotation and truncation.

``discovery`` finds the files, ``stream`` follows one open file, ``lines`` splits bytes into lines
(also for history readers), ``positions`` makes a read position survive a restart, ``inotify`` and
``watches`` wake the reader early. ``llm_log_exporter.tailer`` composes them.
"""

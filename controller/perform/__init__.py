"""What the runtime (controller/runtime.py) performs for a RunCommand, one concern a module:
the claim, POST and record (:mod:`.submit`), the poll (:mod:`.poll`), conditional status writes
(:mod:`.writes`), the output objects (:mod:`.output`), events (:mod:`.events`), the metrics of a
run's end (:mod:`.measure`) and the log lines' fields (:mod:`.logs`).

They log as ``controller.runtime``: to a reader of the logs, they are the runtime.
"""

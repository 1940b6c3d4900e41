"""Worker processes: a supervisor running ``naq worker`` children, recycling, reload.

``_supervisor`` starts and replaces the children, ``_child`` is a child's side of the link
to it, ``_command`` builds a child's command line, ``_memory`` reads the RSS for
``max_memory_mib``, ``_reload`` watches files for ``--reload``.
"""

from ._child import RECYCLE_EXIT_CODE, SupervisorLink, run_child
from ._command import naq_worker_command, parameters_argv
from ._memory import check_memory_limit, rss_mib
from ._reload import check_reload_available
from ._supervisor import Supervisor, WorkerProcessesFailed, describe_exit

__all__ = [
    "RECYCLE_EXIT_CODE",
    "Supervisor",
    "SupervisorLink",
    "WorkerProcessesFailed",
    "check_memory_limit",
    "check_reload_available",
    "describe_exit",
    "naq_worker_command",
    "parameters_argv",
    "rss_mib",
    "run_child",
]

"""gunicorn settings for the example tests: the master uses naq_sync before it forks.

So when the workers are forked, the master has a live loop thread and NATS connection; each
worker must leave those alone and make its own (naq_sync does so on its first call).
"""

import os

import naq_sync

control_socket_disable = True  # gunicorn 27+: tests run several servers; no shared socket file
graceful_timeout = 10  # a stop (SIGTERM) waits this long for busy workers


def when_ready(server) -> None:
    job = naq_sync.enqueue("operator:add", 20, 22, queue=os.environ["NAQ_QUEUE"])
    server.log.info("master enqueued job %s and got %s", job.id, job.result(timeout=60))

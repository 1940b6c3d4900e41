"""A Django view that enqueues from blocking code with naq_sync."""

from __future__ import annotations

from django.http import HttpRequest, JsonResponse

import naq_sync

from .tasks import send_receipt


def checkout(request: HttpRequest) -> JsonResponse:
    order_id = request.POST["order_id"]
    # An explicit job id: a retried request does not send the receipt twice.
    job = naq_sync.enqueue(send_receipt, order_id, queue="mail", job_id=f"receipt-{order_id}")
    return JsonResponse({"job": job.id}, status=202)

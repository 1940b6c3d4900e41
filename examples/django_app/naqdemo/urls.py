from django.urls import path

from . import views

urlpatterns = [
    path("jobs", views.enqueue_add),
    path("jobs/<str:job_id>", views.job_detail),
    path("sums", views.create_sum),
    path("sums/<int:sum_id>", views.sum_detail),
]

"""The Django app: ``INSTALLED_APPS = [..., "naq.contrib.django"]``."""

from django.apps import AppConfig


class NaqConfig(AppConfig):
    name = "naq.contrib.django"
    label = "naq"
    verbose_name = "naq"

    def ready(self) -> None:
        from ._settings import apply_settings

        apply_settings()

"""One model: a sum to compute in the background."""

from django.db import models


class Sum(models.Model):
    a = models.IntegerField()
    b = models.IntegerField()
    result = models.IntegerField(null=True)

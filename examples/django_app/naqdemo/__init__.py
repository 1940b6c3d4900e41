"""A small Django project that enqueues naq jobs from its views, some of them ORM jobs."""

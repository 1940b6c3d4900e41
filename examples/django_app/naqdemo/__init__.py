"""A minimal Django project that enqueues naq jobs from its views (no database)."""

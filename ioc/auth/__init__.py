"""Sign-in for the control room and its API: users with roles, sessions, API tokens (see :mod:`ioc.auth.store`)."""

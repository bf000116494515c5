"""System checks of the loyalty app (`manage.py check --deploy`)."""

from __future__ import annotations

from django.core.checks import Error, Tags, register
from django.db import DatabaseError


@register(Tags.security, deploy=True)
def demo_logins_check(app_configs, **kwargs) -> list[Error]:
    """A deployment whose demo or staff logins open with the demo's published password is not safe.

    `make run` refuses to start then (config.supervisor.prepare); this check says the same to an operator
    who starts the processes by hand: `manage.py check --deploy` before the first gunicorn.
    """
    from loyalty.demo import demo_logins_present

    try:
        found = demo_logins_present()
    except DatabaseError:  # not migrated yet: nothing to find
        return []
    return [
        Error(
            f"{email} logs in with the demo's published password.",
            hint="Change it (manage.py changepassword EMAIL) or deactivate the login.",
            id="loyalty.E001",
        )
        for email in found
    ]

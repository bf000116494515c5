import os
import subprocess
import sys

import pytest

from config.settings import BASE_DIR


def _load_settings(**env: str) -> subprocess.CompletedProcess:
    environment = {k: v for k, v in os.environ.items() if k not in {"DEBUG", "SECRET_KEY", "TALLY_ENV"}}
    environment.update(env)
    return subprocess.run(
        [
            sys.executable,
            "-c",
            "import django, os; os.environ['DJANGO_SETTINGS_MODULE']='config.settings'; "
            "django.setup(); from django.conf import settings; print('DEBUG', settings.DEBUG)",
        ],
        cwd=BASE_DIR,
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.parametrize(
    ("env", "reason"),
    [
        ({"DEBUG": "true", "SECRET_KEY": "x" * 50}, "DEBUG is on"),
        ({"DEBUG": "false"}, "SECRET_KEY is the development default"),
    ],
)
def test_production_refuses_to_start_with_debug_or_the_default_secret_key(env, reason):
    result = _load_settings(TALLY_ENV="production", DATABASE_URL="postgres://x/y", REDIS_URL="redis://x", **env)
    assert result.returncode != 0
    assert "Refusing to start in production" in result.stderr
    assert reason in result.stderr


def test_production_starts_with_debug_off_and_a_real_secret_key():
    from django.conf import settings

    result = _load_settings(
        TALLY_ENV="production",
        DEBUG="false",
        SECRET_KEY="s" * 50,
        DATABASE_URL=settings.DATABASE_URL,
        REDIS_URL=settings.REDIS_URL,
    )
    assert result.returncode == 0, result.stderr
    assert "DEBUG False" in result.stdout


def test_a_malformed_boolean_setting_is_a_clear_error():
    result = _load_settings(DEBUG="maybe")
    assert result.returncode != 0
    assert "DEBUG must be true or false" in result.stderr

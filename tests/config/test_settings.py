import os
import subprocess
import sys

import pytest

from config.settings import BASE_DIR


def _load_settings(show: str = "'DEBUG', settings.DEBUG", **env: str) -> subprocess.CompletedProcess:
    environment = {k: v for k, v in os.environ.items() if k not in {"DEBUG", "SECRET_KEY", "TALLY_ENV"}}
    environment.update(env)
    return subprocess.run(  # noqa: S603 - our own interpreter, a fixed script of this test
        [
            sys.executable,
            "-c",
            "import django, os; os.environ['DJANGO_SETTINGS_MODULE']='config.settings'; "
            f"django.setup(); from django.conf import settings; print({show})",
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


def _production(**env: str) -> subprocess.CompletedProcess:
    from django.conf import settings

    show = (
        "settings.SECURE_HSTS_SECONDS, getattr(settings, 'SECURE_PROXY_SSL_HEADER', None), "
        "settings.SESSION_COOKIE_SECURE"
    )
    return _load_settings(
        show,
        TALLY_ENV="production",
        DEBUG="false",
        SECRET_KEY="s" * 50,
        DATABASE_URL=settings.DATABASE_URL,
        REDIS_URL=settings.REDIS_URL,
        **env,
    )


def test_production_sends_hsts_and_secure_cookies_and_trusts_no_proxy_header_unless_told():
    result = _production()
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["31536000", "None", "True"]

    behind_proxy = _production(SECURE_PROXY_SSL_HEADER="HTTP_X_FORWARDED_PROTO")
    assert "('HTTP_X_FORWARDED_PROTO', 'https')" in behind_proxy.stdout

"""config.supervisor.prepare: what `make run` does before it starts the processes, per environment."""

import pytest

from config.supervisor import prepare
from loyalty.demo import DEMO_PASSWORD
from loyalty.models import Brand, User

pytestmark = pytest.mark.django_db


def test_in_development_the_demo_is_loaded(settings):
    settings.PRODUCTION = False

    prepare()

    assert Brand.objects.filter(slug__in=["coffee", "artist"]).count() == 2
    assert User.objects.get(email="admin@tally.example").check_password(DEMO_PASSWORD)


def test_in_production_no_demo_data_or_login_is_created(settings):
    settings.PRODUCTION = True

    prepare()

    assert not Brand.objects.exists()
    assert not User.objects.exists()


def test_in_production_start_up_is_refused_while_a_staff_login_has_the_demo_password(settings):
    settings.PRODUCTION = True
    User.objects.create_superuser(email="admin@tally.example", password=DEMO_PASSWORD)

    with pytest.raises(SystemExit, match=r"admin@tally\.example still log in with the demo's published password"):
        prepare()

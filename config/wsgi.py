import gc
import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
application = get_wsgi_application()

# Load the URL conf (and with it every view) now, then move everything loaded so far out of the cyclic
# garbage collector's sight: it lives as long as the process. A full collection then walks what the
# requests allocated, not the whole framework; under load those collections paused every thread of a
# worker for 50-100 ms, several times a second.
from django.urls import get_resolver  # noqa: E402

get_resolver().url_patterns  # noqa: B018 - imports the URL conf and the views
gc.freeze()

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
application = get_wsgi_application()

# Load the URL conf (and with it every view) now, then tune the garbage collector (config.memory): what
# was loaded lives as long as the process.
from django.urls import get_resolver  # noqa: E402

from config.memory import gc_tune  # noqa: E402

get_resolver().url_patterns  # noqa: B018 - imports the URL conf and the views
gc_tune()

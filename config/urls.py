from django.conf import settings
from django.conf.urls.static import static
from django.contrib import admin
from django.urls import include, path, re_path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from config.health import healthz
from config.metrics import metrics
from config.middleware import api_not_found

urlpatterns = [
    path("healthz", healthz, name="healthz"),
    path("metrics", metrics, name="metrics"),
    path("admin/economics/", include("economics.urls_portal")),
    path("admin/", admin.site.urls),
    path("api/v1/", include("loyalty.urls_api")),
    path("api/v1/", include("perks.urls_api")),
    path("api/v1/", include("livestream.urls_api")),
    path("api/v1/", include("economics.urls_api")),
    path("api/v1/", include("integrations.urls_api")),
    path("api/v1/", include("engagement.urls_api")),
    path("api/schema/", SpectacularAPIView.as_view(), name="api_schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="api_schema"), name="api_docs"),
    re_path(r"^api/", api_not_found),  # JSON in the error shape, never the HTML 404 page
    path("", include("loyalty.urls")),
    path("", include("engagement.urls")),
    path("", include("perks.urls")),
    path("", include("livestream.urls")),
]
if settings.DEBUG:
    urlpatterns += static(settings.MEDIA_URL, document_root=settings.MEDIA_ROOT)

"""URLs of the REST API, included at "api/" by config/urls.py."""

from django.contrib.auth.decorators import login_required
from django.urls import path, re_path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView
from rest_framework import routers
from rest_framework.permissions import IsAuthenticated

from annotate import api, api_compare, training_api

router = routers.DefaultRouter()
router.register("tasks", api.TaskViewSet, basename="task")
router.register("judgments", api.JudgmentViewSet, basename="judgment")
router.register("responses", api.ResponseViewSet, basename="response")
router.register("rounds", api.RoundViewSet, basename="round")
router.register("training-runs", training_api.TrainingRunViewSet, basename="trainingrun")
router.register("comparisons", api_compare.ComparisonViewSet, basename="comparison")

# drf-spectacular serves the schema to anyone by default; every endpoint here needs a login.
signed_in = {"permission_classes": [IsAuthenticated]}

app_name = "api"
urlpatterns = [
    path("auth/token/", api.ObtainToken.as_view(), name="token"),
    path("export/judgments.jsonl", api.ExportJudgments.as_view(), name="export-judgments"),
    path(
        "export/comparisons.jsonl",
        api_compare.ExportComparisons.as_view(),
        name="export-comparisons",
    ),
    path("schema/", SpectacularAPIView.as_view(**signed_in), name="schema"),
    # A page for a browser: logged out, it sends people to the login like every other page.
    path(
        "docs/",
        login_required(SpectacularSwaggerView.as_view(url_name="api:schema", **signed_in)),
        name="docs",
    ),
    *router.urls,
    re_path(r"^(?P<path>.*)$", api.not_found),
]

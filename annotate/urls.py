from django.urls import path

from annotate import (
    compare_views,
    landing,
    lens_views,
    onboarding_views,
    training_views,
    views,
)

app_name = "annotate"
urlpatterns = [
    path("", views.show_task, name="home"),
    path("start/", landing.land, name="landing"),
    path("overview/", landing.show_overview, name="overview"),
    path("responses/<int:pk>/judgment/", views.submit_judgment, name="judgment-submit"),
    path("responses/<int:pk>/skip/", views.skip_response, name="response-skip"),
    path("judgments/", views.list_judgments, name="judgment-list"),
    path("judgments/<int:pk>/edit/", views.edit_judgment, name="judgment-edit"),
    path("guidelines/", views.show_guidelines, name="guidelines"),
    path("review/", views.show_review_queue, name="review-queue"),
    path("review/<int:pk>/", views.review_judgment, name="judgment-review"),
    path("review/agreement/", views.show_agreement, name="agreement"),
    path("training/", training_views.list_runs, name="training-list"),
    path("training/new/", training_views.new_run, name="training-new"),
    path(
        "training/preview/<uuid:result_id>/",
        training_views.show_preview,
        name="training-preview",
    ),
    path("training/<int:pk>/", training_views.show_run, name="training-run"),
    path("training/<int:pk>/series/", training_views.run_series, name="training-series"),
    path("training/<int:pk>/cancel/", training_views.cancel_run, name="training-cancel"),
    path("training/<int:pk>/resume/", training_views.resume_run, name="training-resume"),
    path("training/<int:pk>/generate/", training_views.generate_round, name="training-generate"),
    path(
        "training/<int:pk>/snapshot/", training_views.download_snapshot, name="training-snapshot"
    ),
    path("compare/", compare_views.list_comparisons, name="compare"),
    path("compare/new/", compare_views.create_comparison, name="comparison-create"),
    path("compare/<int:pk>/", compare_views.show_pair, name="compare-pair"),
    path(
        "compare/<int:pk>/pairs/<int:pair_pk>/vote/",
        compare_views.vote_pair,
        name="pair-vote",
    ),
    path(
        "compare/<int:pk>/pairs/<int:pair_pk>/skip/",
        compare_views.skip_pair,
        name="pair-skip",
    ),
    path("compare/<int:pk>/results/", compare_views.show_results, name="comparison-results"),
    path("rounds/", compare_views.show_rounds, name="rounds"),
    path("lens/preview/", lens_views.preview_lens, name="lens-preview"),
    path("lens/preview/<uuid:job_id>/", lens_views.show_preview, name="lens-preview-result"),
    path("judgments/<int:pk>/lens/", lens_views.judgment_lens, name="judgment-lens"),
    path("staff/users/add/", onboarding_views.add_users, name="users-add"),
]

from django.urls import path

from annotate import compare_views, views

app_name = "annotate"
urlpatterns = [
    path("", views.show_task, name="home"),
    path("responses/<int:pk>/judgment/", views.submit_judgment, name="judgment-submit"),
    path("responses/<int:pk>/skip/", views.skip_response, name="response-skip"),
    path("judgments/", views.list_judgments, name="judgment-list"),
    path("judgments/<int:pk>/edit/", views.edit_judgment, name="judgment-edit"),
    path("guidelines/", views.show_guidelines, name="guidelines"),
    path("review/", views.show_review_queue, name="review-queue"),
    path("review/<int:pk>/", views.review_judgment, name="judgment-review"),
    path("review/agreement/", views.show_agreement, name="agreement"),
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
]

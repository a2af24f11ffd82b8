from django.urls import path

from annotate import landing, views

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
]

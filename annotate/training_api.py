"""The training-run API (staff): list and detail with the metric series, a new run that is
validated and enqueued as the New run page does, cancel and resume.

Routed as "training-runs" in annotate/api_urls.py.
"""

from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from annotate import jobs, models, training_runs, training_serializers
from annotate import permissions as perms
from annotate.api import ApiSchema, Conflict, error


@extend_schema_view(
    list=extend_schema(description="Every run, newest first; filter by status."),
    retrieve=extend_schema(
        description="One run with its config, data snapshot, metrics, log tail and the "
        "metric series the run page plots."
    ),
)
class TrainingRunViewSet(
    mixins.CreateModelMixin,
    mixins.RetrieveModelMixin,
    mixins.ListModelMixin,
    viewsets.GenericViewSet,
):
    schema = ApiSchema()
    permission_classes = [perms.IsStaff]
    queryset = models.TrainingRun.objects.select_related("created_by")
    filterset_fields = ["status"]

    def get_queryset(self):
        jobs.sweep_stale()  # a run whose worker was killed reads as interrupted
        return super().get_queryset()

    def get_serializer_class(self):
        if self.action == "create":
            return training_serializers.NewTrainingRunSerializer
        if self.action == "list":
            return training_serializers.TrainingRunSerializer
        return training_serializers.TrainingRunDetailSerializer

    @extend_schema(
        responses={
            201: training_serializers.TrainingRunDetailSerializer,
            200: OpenApiResponse(
                training_serializers.TrainingRunDetailSerializer,
                description="This request_token started a run already: that run.",
            ),
        }
    )
    def create(self, request):
        """Snapshot the selected judgments, record the run and queue it on the gpu queue.
        An empty selection or a bad override is a 400 and nothing is queued."""
        serializer = training_serializers.NewTrainingRunSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        run, created = training_runs.start(
            filters=serializer.filters(data),
            base_model=data["base_model"].strip(),
            overrides=data["overrides"],
            user=request.user,
            token=data["request_token"],
        )
        body = training_serializers.TrainingRunDetailSerializer(run).data
        if not created:
            return Response(body, status=status.HTTP_200_OK)
        return Response(
            body, status=status.HTTP_201_CREATED, headers={"Location": run.get_absolute_url()}
        )

    @extend_schema(
        request=None,
        responses={
            202: training_serializers.TrainingRunSerializer,
            409: error("The run has finished; there is nothing to cancel."),
        },
    )
    @action(detail=True, methods=["post"])
    def cancel(self, request, pk: str):
        """Cancel: a queued run at once, a running one at its next optimizer step (it keeps a
        checkpoint, so it can be resumed)."""
        run = self.get_object()
        if not jobs.request_cancel(run):
            raise Conflict(f"Training run {run.pk} is {run.status}: there is nothing to cancel.")
        body = training_serializers.TrainingRunSerializer(run).data
        return Response(body, status=status.HTTP_202_ACCEPTED)

    @extend_schema(
        request=None,
        responses={
            202: training_serializers.TrainingRunSerializer,
            409: error("Only an interrupted, failed or cancelled run can be resumed."),
        },
    )
    @action(detail=True, methods=["post"])
    def resume(self, request, pk: str):
        """Queue an interrupted, failed or cancelled run again, from its last checkpoint."""
        run = self.get_object()
        try:
            jobs.enqueue_resume(run)
        except jobs.JobError as exc:
            raise Conflict(str(exc)) from exc
        body = training_serializers.TrainingRunSerializer(run).data
        return Response(body, status=status.HTTP_202_ACCEPTED)

"""The REST API: viewsets and views, routed in annotate/api_urls.py.

Same rules as the pages: the queue functions of annotate.queue, the role predicates of
annotate.roles (through annotate.permissions) and the model validators. Visibility is
decided in get_queryset(), so another annotator's judgment is a 404; a wrong role is a 403.
"""

from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import transaction
from django.http import JsonResponse, StreamingHttpResponse
from django.shortcuts import get_object_or_404
from django.views.decorators.csrf import csrf_exempt
from drf_spectacular.openapi import AutoSchema
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    extend_schema_view,
)
from rest_framework import (
    exceptions,
    mixins,
    negotiation,
    pagination,
    renderers,
    status,
    throttling,
    views,
    viewsets,
)
from rest_framework.authtoken.views import ObtainAuthToken
from rest_framework.decorators import action
from rest_framework.response import Response

from annotate import (
    exports,
    filters,
    imports,
    landing,
    lockout,
    models,
    queue,
    roles,
    serializers,
)
from annotate import permissions as perms

JSONL = "application/x-ndjson"

# POST /api/responses/ reads the whole body into memory before it checks a record.
MAX_IMPORT_BYTES = 64 * 2**20


class ApiSchema(AutoSchema):
    """drf-spectacular's schema plus the error answers (DRF's default error bodies), so a
    client knows every status it can get."""

    ERRORS = {
        "400": "Invalid input; the body names each field's problem.",
        "401": "No credentials, or an unknown token.",
        "403": "Your role does not allow this.",
        "404": "Not found (or not yours to see).",
        "415": "The body is not JSON (or a form).",
        "429": "Too many requests; wait the Retry-After seconds.",
    }

    def get_operation(self, path, path_regex, path_prefix, method, registry):
        operation = super().get_operation(path, path_regex, path_prefix, method, registry)
        if operation is None:
            return None
        parameters = operation.get("parameters", [])
        where = {param["in"] for param in parameters}
        codes = ["429"]
        if operation.get("security"):
            codes += ["401", "403"]
        if "requestBody" in operation:
            codes += ["400", "415"]
        elif "query" in where:
            codes.append("400")
        # An unknown id, or a cursor that no longer points anywhere.
        if "path" in where or any(param["name"] == "cursor" for param in parameters):
            codes.append("404")
        for code in sorted(codes):
            operation["responses"].setdefault(
                code,
                {
                    "description": self.ERRORS[code],
                    "content": {"application/json": {"schema": {"type": "object"}}},
                },
            )
        return operation


def error(description: str) -> OpenApiResponse:
    return OpenApiResponse(OpenApiTypes.OBJECT, description=description)


class Conflict(exceptions.APIException):
    """The request is well formed but the object's state refuses it."""

    status_code = status.HTTP_409_CONFLICT
    default_detail = "The request conflicts with the current state of the object."
    default_code = "conflict"


class PayloadTooLarge(exceptions.APIException):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_detail = (
        f"The request body is over {MAX_IMPORT_BYTES // 2**20} MiB; send the records in "
        "several requests."
    )
    default_code = "too_large"


@extend_schema(
    request=serializers.TokenRequestSerializer,
    responses={200: serializers.TokenSerializer},
    auth=[],
)
class ObtainToken(lockout.PassLockoutToMiddleware, ObtainAuthToken):
    """Trade a username and password for the user's API token (created on first use).
    Wrong passwords count towards the login lockout (annotate/lockout.py)."""

    schema = ApiSchema()
    # No session or token here: a logged-in browser needs no CSRF token to ask, and a
    # stale token header doesn't get in the way of getting a fresh one.
    authentication_classes = []
    throttle_classes = [throttling.ScopedRateThrottle]
    throttle_scope = "token"
    serializer_class = serializers.TokenRequestSerializer


class JudgmentPagination(pagination.CursorPagination):
    # id, not created: unique and never changes, so cursors stay valid; imported judgments
    # can carry old creation times.
    ordering = "-id"
    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 500


class TaskViewSet(viewsets.GenericViewSet):
    """The caller's queue: the same reservations as the annotator's page."""

    schema = ApiSchema()
    permission_classes = [perms.IsAnnotator]
    serializer_class = serializers.TaskSerializer
    queryset = models.Response.objects.all()
    lookup_url_kwarg = "response_id"
    lookup_value_regex = "[0-9]+"
    filter_backends = []

    @extend_schema(
        responses={
            200: serializers.TaskSerializer,
            204: OpenApiResponse(description="Nothing is left for you to judge."),
        }
    )
    @action(detail=False, methods=["get"])
    def next(self, request):
        """Reserve the next response for the caller (or return the one already reserved)."""
        reservation = queue.next_for(request.user)
        if reservation is None:
            return Response(status=status.HTTP_204_NO_CONTENT)
        return Response(serializers.TaskSerializer(reservation).data)

    @extend_schema(
        parameters=[OpenApiParameter("response_id", int, OpenApiParameter.PATH)],
        request=serializers.SkipSerializer,
        responses={201: serializers.SkipSerializer},
    )
    @action(detail=True, methods=["post"], serializer_class=serializers.SkipSerializer)
    def skip(self, request, response_id: str):
        """Take a response out of the caller's queue, with a reason."""
        response = get_object_or_404(models.Response, pk=response_id)
        serializer = serializers.SkipSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        try:
            skipped = queue.skip(request.user, response, serializer.validated_data["reason"])
        except DjangoValidationError as exc:
            raise serializers.drf_error(exc) from exc
        return Response(serializers.SkipSerializer(skipped).data, status=status.HTTP_201_CREATED)


@extend_schema_view(
    list=extend_schema(
        description="The caller's judgments, newest first; reviewers and staff see everyone's."
    ),
    create=extend_schema(
        description="Judge a response. The caller is the annotator. 409 when the response "
        "has all its judgments already, is retired, or the caller judged it before.",
        responses={
            201: serializers.JudgmentSerializer,
            409: error("The queue refuses the judgment; detail says why."),
        },
    ),
    retrieve=extend_schema(description="One judgment (yours, or any for reviewers and staff)."),
    partial_update=extend_schema(
        description="Change your own judgment until it is reviewed (then 409).",
        responses={
            200: serializers.JudgmentSerializer,
            409: error("The judgment has been reviewed and can no longer be changed."),
        },
    ),
)
class JudgmentViewSet(
    mixins.CreateModelMixin,
    mixins.RetrieveModelMixin,
    mixins.UpdateModelMixin,
    mixins.ListModelMixin,
    viewsets.GenericViewSet,
):
    """Annotators see and edit their own judgments; reviewers and staff see all."""

    schema = ApiSchema()
    permission_classes = [perms.IsAnnotator, perms.IsOwnerOrReadOnly]
    serializer_class = serializers.JudgmentSerializer
    pagination_class = JudgmentPagination
    filterset_class = filters.JudgmentFilter
    # PUT would have to resend every field; PATCH is enough. No DELETE: staff use the admin.
    http_method_names = ["get", "post", "patch", "head", "options"]

    def get_queryset(self):
        judgments = models.Judgment.objects.select_related("response", "annotator", "reviewer")
        if roles.is_reviewer(self.request.user):
            return judgments
        return judgments.filter(annotator_id=self.request.user.pk)

    def get_serializer_class(self):
        if self.action == "partial_update":
            return serializers.JudgmentUpdateSerializer
        return serializers.JudgmentSerializer

    def perform_create(self, serializer) -> None:
        try:
            serializer.save(annotator=self.request.user)
        except queue.QueueError as exc:
            raise Conflict(str(exc)) from exc

    def perform_update(self, serializer) -> None:
        with transaction.atomic():
            # Lock the row, so a review that lands meanwhile isn't overwritten.
            state = (
                models.Judgment.objects.select_for_update()
                .values_list("review_state", flat=True)
                .get(pk=serializer.instance.pk)
            )
            if state != models.Judgment.ReviewState.PENDING:
                raise Conflict(f"This judgment has been {state} and can no longer be changed.")
            serializer.save()

    @extend_schema(
        request=serializers.ReviewSerializer,
        responses={
            200: serializers.JudgmentSerializer,
            409: error("The judgment was reviewed already."),
        },
    )
    @action(
        detail=True,
        methods=["post"],
        permission_classes=[perms.IsReviewer],
        serializer_class=serializers.ReviewSerializer,
    )
    def review(self, request, pk: str):
        """Accept or reject a pending judgment (a rejection needs a note); accepting may
        first correct its verdict, critique or spans. 409 if it was reviewed already."""
        judgment = self.get_object()
        if judgment.annotator_id == request.user.pk:
            raise exceptions.PermissionDenied("You cannot review your own judgment.")
        serializer = serializers.ReviewSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        with transaction.atomic():
            # Locked, so two reviewers deciding at once don't overwrite each other.
            judgment = models.Judgment.objects.select_for_update().get(pk=judgment.pk)
            if judgment.is_reviewed:
                raise Conflict(
                    f"Another reviewer has already {judgment.review_state} this judgment."
                )
            serializer.save(judgment, request.user)
        return Response(serializers.JudgmentSerializer(judgment).data)


class ResponseViewSet(viewsets.GenericViewSet):
    """Staff push prompts and model responses, as import_responses does with a file."""

    schema = ApiSchema()
    permission_classes = [perms.IsStaff]
    serializer_class = serializers.ResponseImportSerializer
    filter_backends = []

    @extend_schema(
        responses={
            201: serializers.ImportSummarySerializer,
            200: OpenApiResponse(
                serializers.ImportSummarySerializer,
                description="Everything was there already; nothing was created.",
            ),
            413: error("The body is too large; send the records in several requests."),
        }
    )
    def create(self, request):
        """Create prompts and responses (and imported judgments) from Alpaca-style records,
        all or nothing. Idempotent: sending the same records again creates nothing. A bad
        record gets a 400 naming it by its index, e.g. "records[3]: missing 'output'."."""
        if int(request.META.get("CONTENT_LENGTH") or 0) > MAX_IMPORT_BYTES:
            raise PayloadTooLarge()
        serializer = serializers.ResponseImportSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        try:
            summary = imports.import_records(
                ((f"records[{i}]", record) for i, record in enumerate(data["records"])),
                source=data["source"],
                round_number=data["round"],
                overlap=data["overlap"],
                accept_judgments=data["accept_judgments"],
            )
        except imports.RecordError as exc:
            raise exceptions.ValidationError({"records": [str(exc)]}) from exc
        created = summary.prompts_created or summary.responses_created or summary.judgments_created
        return Response(
            serializers.ImportSummarySerializer(summary).data,
            status=status.HTTP_201_CREATED if created else status.HTTP_200_OK,
        )


class RoundViewSet(viewsets.ReadOnlyModelViewSet):
    """Rounds of the online loop, with how many of their responses were judged and how many
    of those judgments found problems (the simplest progress signal)."""

    schema = ApiSchema()
    permission_classes = [perms.IsAnnotator]
    serializer_class = serializers.RoundSerializer
    lookup_field = "number"
    filter_backends = []

    def get_queryset(self):
        return landing.rounds_with_counts()


class IgnoreAcceptHeader(negotiation.BaseContentNegotiation):
    """The export is JSON lines whatever the client accepts, and its errors are JSON;
    without this an Accept header DRF cannot match would turn into a 406."""

    def select_parser(self, request, parsers):
        return parsers[0]

    def select_renderer(self, request, renderers, format_suffix=None):
        return renderers[0], renderers[0].media_type


class ExportJudgments(views.APIView):
    """The triples export_judgments writes, streamed (staff)."""

    schema = ApiSchema()
    permission_classes = [perms.IsStaff]
    renderer_classes = [renderers.JSONRenderer]
    content_negotiation_class = IgnoreAcceptHeader

    @extend_schema(
        parameters=[serializers.ExportQuerySerializer],
        responses={
            (200, JSONL): OpenApiResponse(
                OpenApiTypes.STR,
                description='One JSON object a line: {"id", "instruction", "input", "output", '
                '"judgment", "verdict", "annotator", "round", "response_id"}; "judgment" is '
                "null for positive verdicts unless positive_judgment is set.",
            )
        },
    )
    def get(self, request) -> StreamingHttpResponse:
        """Judgments as JSON lines, oldest first, filtered as export_judgments filters them."""
        query = serializers.ExportQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        params = query.validated_data
        judgments = exports.select_judgments(
            params["status"], round_number=params.get("round"), since=params.get("since")
        )
        lines = exports.iter_jsonl(judgments, positive_judgment=params["positive_judgment"])
        response = StreamingHttpResponse(lines, content_type=JSONL)
        response["Content-Disposition"] = 'attachment; filename="judgments.jsonl"'
        return response


@csrf_exempt  # else a POST gets the CSRF failure page (HTML, 403) instead of the 404
def not_found(request, path: str = "") -> JsonResponse:
    """JSON, not Django's HTML page, for a path under /api/ that names nothing."""
    return JsonResponse({"detail": "Not found."}, status=404)

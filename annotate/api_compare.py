"""The comparisons API: staff create comparisons, evaluators (annotators and reviewers)
take pairs and vote, reviewers and staff read results, staff export preference pairs.

The same functions as the pages (annotate.compare, annotate.compare_stats); the pair a
caller gets shows "left" and "right" only, never which system wrote which.
"""

from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import StreamingHttpResponse
from django.shortcuts import get_object_or_404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import renderers, serializers, status, views, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from annotate import compare, compare_exports, compare_stats, models, queue, rounds
from annotate import permissions as perms
from annotate import validators as v
from annotate.api import JSONL, ApiSchema, Conflict, IgnoreAcceptHeader, error
from annotate.serializers import StrictFieldsMixin, drf_error


class ComparisonSerializer(StrictFieldsMixin, serializers.ModelSerializer):
    pairs = serializers.SerializerMethodField()
    created_by = serializers.SlugRelatedField(slug_field="username", read_only=True)

    class Meta:
        model = models.Comparison
        fields = [
            "id",
            "system_a",
            "system_b",
            "prompt_set",
            "sample_size",
            "overlap",
            "instructions",
            "state",
            "pairs",
            "created_by",
            "created",
        ]
        read_only_fields = ["id", "state", "pairs", "created_by", "created"]

    def get_pairs(self, comparison) -> int:
        return comparison.pairs.count()


class PairSerializer(serializers.Serializer):
    """A pair as its evaluator sees it: no system, round or response id."""

    pair = serializers.IntegerField(source="pair.pk")
    comparison = serializers.IntegerField(source="pair.comparison_id")
    instructions = serializers.CharField(source="pair.comparison.instructions")
    instruction = serializers.CharField(source="pair.prompt.instruction")
    input = serializers.CharField(source="pair.prompt.input")
    left = serializers.SerializerMethodField()
    right = serializers.SerializerMethodField()
    reserved_until = serializers.DateTimeField(source="expires")

    def get_left(self, reservation) -> str:
        return compare.sides(reservation)[0].text

    def get_right(self, reservation) -> str:
        return compare.sides(reservation)[1].text


class VoteSerializer(StrictFieldsMixin, serializers.ModelSerializer):
    pair = serializers.IntegerField(source="pair_id")
    reason = serializers.CharField(
        required=False, allow_blank=True, max_length=v.MAX_REASON_CHARS, default=""
    )

    class Meta:
        model = models.Vote
        fields = ["id", "pair", "choice", "reason", "seconds_spent", "created"]
        read_only_fields = ["id", "created"]
        extra_kwargs = {"seconds_spent": {"min_value": 0, "max_value": v.MAX_SECONDS}}


class IntervalField(serializers.ListField):
    child = serializers.FloatField()


class ResultSerializer(serializers.Serializer):
    votes = serializers.IntegerField()
    a = serializers.IntegerField(help_text="Votes for system A.")
    b = serializers.IntegerField(help_text="Votes for system B.")
    tie = serializers.IntegerField()
    both_bad = serializers.IntegerField()
    win_rate = serializers.FloatField(allow_null=True, help_text="B over A, ties count half.")
    interval = IntervalField(allow_null=True, help_text="95 % bootstrap interval.")
    p_value = serializers.FloatField(allow_null=True, help_text="Sign test, decisive votes.")
    left_share = serializers.FloatField(allow_null=True, help_text="Position bias.")
    left_interval = IntervalField(allow_null=True)
    agreement = serializers.FloatField(allow_null=True)
    alpha = serializers.FloatField(allow_null=True)
    agreement_units = serializers.IntegerField()
    evaluators = serializers.IntegerField()


class ScoreSerializer(serializers.Serializer):
    system = serializers.CharField()
    score = serializers.FloatField()
    low = serializers.FloatField()
    high = serializers.FloatField()
    votes = serializers.IntegerField()


class ResultsSerializer(serializers.Serializer):
    comparison = ComparisonSerializer()
    result = ResultSerializer()
    bradley_terry = ScoreSerializer(many=True)


class ComparisonViewSet(viewsets.GenericViewSet):
    schema = ApiSchema()
    queryset = models.Comparison.objects.all()
    serializer_class = ComparisonSerializer
    filter_backends = []

    def get_permissions(self):
        if self.action == "create":
            return [perms.IsStaff()]
        if self.action == "results":
            return [perms.IsReviewer()]
        return [perms.IsAnnotator()]

    @extend_schema(responses={201: ComparisonSerializer})
    def create(self, request):
        """Create a comparison (staff): two different systems ("base", "round:N",
        "run:ID"), a prompt set ("all", "source=NAME", "round=N"), a sample no larger than
        the set. Pairs appear for prompts both systems have answered."""
        serializer = ComparisonSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        try:
            comparison = compare.create(**serializer.validated_data, created_by=request.user)
        except DjangoValidationError as exc:
            raise drf_error(exc) from exc
        return Response(ComparisonSerializer(comparison).data, status=status.HTTP_201_CREATED)

    @extend_schema(
        responses={
            200: PairSerializer,
            204: OpenApiResponse(description="Nothing is left for you to vote on."),
        }
    )
    @action(detail=True, methods=["get"])
    def next(self, request, pk: str):
        """Reserve the next pair for the caller (or return the one already reserved), with
        the side order drawn for them."""
        comparison = self.get_object()
        if comparison.state == models.Comparison.State.WAITING:
            compare.refresh(comparison)
        reservation = compare.next_for(request.user, comparison)
        if reservation is None:
            return Response(status=status.HTTP_204_NO_CONTENT)
        return Response(PairSerializer(reservation).data)

    @extend_schema(
        request=VoteSerializer,
        responses={
            201: VoteSerializer,
            409: error("The pair is full, not reserved for you, closed, or you voted on it."),
        },
    )
    @action(detail=True, methods=["post"], serializer_class=VoteSerializer)
    def votes(self, request, pk: str):
        """Vote on a pair you were handed: left, right, tie or both_bad."""
        comparison = self.get_object()
        serializer = VoteSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        pair = get_object_or_404(models.ComparisonPair, pk=data["pair_id"], comparison=comparison)
        try:
            vote = compare.submit(
                request.user,
                pair,
                choice=data["choice"],
                reason=data.get("reason", ""),
                seconds_spent=data.get("seconds_spent"),
            )
        except DjangoValidationError as exc:
            raise drf_error(exc) from exc
        except queue.QueueError as exc:
            raise Conflict(str(exc)) from exc
        return Response(VoteSerializer(vote).data, status=status.HTTP_201_CREATED)

    @extend_schema(responses={200: ResultsSerializer})
    @action(detail=True, methods=["get"])
    def results(self, request, pk: str):
        """Win rate of B over A with its interval, sign test, counts, position bias,
        agreement, and Bradley–Terry scores of every compared system."""
        comparison = self.get_object()
        if comparison.state == models.Comparison.State.WAITING:
            compare.refresh(comparison)
        data = {
            "comparison": comparison,
            "result": compare_stats.comparison_result(comparison),
            "bradley_terry": rounds.bt_scores(),
        }
        return Response(ResultsSerializer(data).data)


class ExportQuerySerializer(StrictFieldsMixin, serializers.Serializer):
    comparison = serializers.IntegerField(required=False, min_value=1)
    include_ties = serializers.BooleanField(
        default=False, help_text='Keep ties and "both are bad" (see outcome).'
    )


class ExportComparisons(views.APIView):
    """Votes as preference pairs, streamed (staff)."""

    schema = ApiSchema()
    permission_classes = [perms.IsStaff]
    renderer_classes = [renderers.JSONRenderer]
    content_negotiation_class = IgnoreAcceptHeader

    @extend_schema(
        parameters=[ExportQuerySerializer],
        responses={
            (200, JSONL): OpenApiResponse(
                OpenApiTypes.STR,
                description='One JSON object a line: {"prompt", "chosen", "rejected", '
                '"system_chosen", "system_rejected", "round_chosen", "round_rejected", '
                '"evaluator", "comparison", "vote_id", "outcome"}.',
            )
        },
    )
    def get(self, request) -> StreamingHttpResponse:
        """One line per decisive vote, oldest first, as TRL's DPO trainer reads them."""
        query = ExportQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        params = query.validated_data
        votes = compare_exports.select_votes(
            params.get("comparison"), include_ties=params["include_ties"]
        )
        response = StreamingHttpResponse(compare_exports.iter_jsonl(votes), content_type=JSONL)
        response["Content-Disposition"] = 'attachment; filename="comparisons.jsonl"'
        return response

"""Which ARM errors a run may retry: one table of ARM's error codes, each rule with its reason,
then the HTTP status when the code is unknown (Azure Service Operator's classifyCloudErrorCode is
the model; where this differs, the rule says why)."""

from __future__ import annotations

from dataclasses import dataclass

from controller.failure import TRANSIENT_HTTP_STATUSES, Classification, is_transient_status

__all__ = ["classify", "explain", "is_retryable"]


@dataclass(frozen=True)
class _Rule:
    classification: Classification
    hint: str | None = None  # a sentence after ARM's message: what a person can do about it

    def explain(self, message: str) -> str:
        if self.hint is None:
            return message
        return f"{message}{'' if message.endswith('.') else '.'} {self.hint}"


_RETRY = _Rule(Classification.RETRY)
_FINAL = _Rule(Classification.FINAL)
_GRANT = (
    "Grant the identity Microsoft.ContainerService/managedClusters/runcommand/action, "
    ".../commandResults/read and .../read on the cluster (docs/install/azure-rbac.md); "
    "a new role assignment can take minutes to apply."
)

# Error codes decide before status codes: the same status (400, 403, 500) carries both kinds.
# Keys casefolded. Compared with Azure Service Operator's table (its classifyCloudErrorCode),
# which this follows except where a reason says otherwise. Each rule says why.
_RULES: dict[str, _Rule] = {
    code.casefold(): rule
    for code, rule in {
        # The command pod did not start in time: the cluster may have room in a moment.
        "KubernetesOperationError": _RETRY,
        "KubernetesPerformanceError": _RETRY,
        # ARM or the resource provider is throttling, failing or slow.
        "TooManyRequests": _RETRY,
        "InternalServerError": _RETRY,
        "ServiceUnavailable": _RETRY,
        "GatewayTimeout": _RETRY,
        "RequestTimeout": _RETRY,
        # Another operation holds the cluster; it ends by itself.
        "Conflict": _RETRY,
        "AnotherOperationInProgress": _RETRY,
        "OperationNotAllowed": _RETRY,  # busy; see _PROPERTY_TARGET_PREFIX for the fatal kind
        # ARM refused the identity, and a refused request ran nothing. A new role assignment
        # takes minutes to reach ARM, so, as ASO does, the run retries within spec.retries
        # with its backoff; the clients never retry it at once.
        "AuthorizationFailed": _Rule(Classification.RETRY_LATER, _GRANT),
        "LinkedAuthorizationFailed": _Rule(Classification.RETRY_LATER, _GRANT),
        # Azure Policy denies it and keeps denying until someone changes the policy or grants
        # an exemption, which no retry budget outlasts (ASO holds it fatal too).
        "RequestDisallowedByPolicy": _Rule(
            Classification.FINAL,
            "An Azure Policy assignment denies it: ask its owner for an exemption, then change "
            "spec.runToken to run again.",
        ),
        # The request itself is wrong: the same request fails the same way.
        "BadRequest": _FINAL,
        "InvalidParameter": _FINAL,
        "InvalidRequestContent": _FINAL,
        "MissingAADClusterToken": _FINAL,  # the client resends once with a token itself
        # The token is not accepted: a new one from the same credential is refused too.
        "InvalidAuthenticationToken": _FINAL,
        "InvalidAuthenticationTokenTenant": _FINAL,
        # What the spec names does not exist. ASO retries these because it creates resources in
        # order; nothing here creates clusters, so waiting would only delay the answer.
        "ResourceNotFound": _FINAL,
        "ResourceGroupNotFound": _FINAL,
        "SubscriptionNotFound": _FINAL,
        "NotFound": _FINAL,
    }.items()
}
# A status without a known code: a timeout, throttling, a server failure, or ARM's conflict
# (another operation holds the resource) may pass; any other 4xx is final.
_ARM_TRANSIENT_STATUSES = TRANSIENT_HTTP_STATUSES | {409}
# OperationNotAllowed usually means "busy with another operation" (retryable). When its target
# names a property of the resource, that setting forbids the operation (run command disabled,
# cluster stopped): the same request fails until someone changes the cluster, so it is fatal.
_CODE_OPERATION_NOT_ALLOWED = "operationnotallowed"
_PROPERTY_TARGET_PREFIX = "properties."


def _rule(status_code: int, code: str | None, target: str | None) -> _Rule:
    if code:
        folded = code.casefold()
        if (
            folded == _CODE_OPERATION_NOT_ALLOWED
            and target is not None
            and target.casefold().startswith(_PROPERTY_TARGET_PREFIX)
        ):
            return _FINAL
        if (rule := _RULES.get(folded)) is not None:
            return rule
    if status_code in _ARM_TRANSIENT_STATUSES or is_transient_status(status_code):
        return _RETRY
    return _FINAL


def classify(status_code: int, code: str | None, target: str | None = None) -> Classification:
    """What an ARM error allows next (see the table above)."""
    return _rule(status_code, code, target).classification


def is_retryable(status_code: int, code: str | None, target: str | None = None) -> bool:
    """Whether an ARM error may succeed if the same request is made again later."""
    return classify(status_code, code, target) is not Classification.FINAL


def explain(status_code: int, code: str | None, message: str, target: str | None = None) -> str:
    """ARM's message, followed by what a person can do about it where the rule says."""
    return _rule(status_code, code, target).explain(message)

from onca_gcp_helpers import gcp_context, gcp_success, principal

DELETE_SINK = "google.logging.v2.ConfigServiceV2.DeleteSink"
UPDATE_SINK = "google.logging.v2.ConfigServiceV2.UpdateSink"
CREATE_EXCLUSION = "google.logging.v2.ConfigServiceV2.CreateExclusion"
WATCHED_METHODS = frozenset({DELETE_SINK, UPDATE_SINK, CREATE_EXCLUSION})


def rule(event):
    method = event.deep_get("protoPayload", "methodName")
    if method not in WATCHED_METHODS or not gcp_success(event):
        return False
    # Sink updates are routine (filters, destinations) unless they switch the export off.
    if method == UPDATE_SINK:
        return event.deep_get("protoPayload", "request", "sink", "disabled") is True
    return True


def title(event):
    method = event.deep_get("protoPayload", "methodName", default="").rsplit(".", 1)[-1]
    return (
        f"GCP log export weakened: [{method}] on [{event.deep_get('protoPayload', 'resourceName')}] "
        f"by [{principal(event)}]"
    )


def dedup(event):
    return event.deep_get("protoPayload", "resourceName", default="<UNKNOWN_RESOURCE>")


def alert_context(event):
    return gcp_context(event)

from onca_base_helpers import registered_domain
from onca_zeek_helpers import zeek_context

# Base32/base64/hex-encoded payload chunks fill labels close to the 63-byte maximum; names people and
# CDNs use stay far below it.
MIN_LABEL_LENGTH = 50
MIN_QUERY_LENGTH = 150
# Security products that legitimately encode lookups (file hashes, URLs) into DNS labels.
BENIGN_DOMAINS = frozenset({"sophosxl.net", "mcafee.com", "trendmicro.com", "spamhaus.org"})


def rule(event):
    query = event.get("query")
    # Cheapest test first: a name shorter than one long label cannot match.
    if not query or len(query) < MIN_LABEL_LENGTH:
        return False
    if len(query) < MIN_QUERY_LENGTH and max(len(label) for label in query.split(".")) < MIN_LABEL_LENGTH:
        return False
    return registered_domain(query) not in BENIGN_DOMAINS


def title(event):
    domain = registered_domain(event.get("query"))
    return f"Possible DNS tunnelling to [{domain}] from [{event.get('id.orig_h')}]"


def dedup(event):
    return f"{event.get('id.orig_h')}:{registered_domain(event.get('query'))}"


def alert_context(event):
    context = zeek_context(event)
    context["query"] = event.get("query")
    context["qtype_name"] = event.get("qtype_name")
    context["domain"] = registered_domain(event.get("query"))
    return context

from onca_zeek_helpers import is_outbound, zeek_context

# Default ports of Metasploit handlers, IRC botnets, Tor relays and common RAT listeners. Legitimate
# outbound traffic to these from servers and workstations is rare.
SUSPICIOUS_PORTS = {
    1337: "common backdoor",
    4444: "Metasploit default handler",
    5555: "Android Debug Bridge / RATs",
    6666: "IRC (botnet C2)",
    6667: "IRC (botnet C2)",
    6697: "IRC over TLS (botnet C2)",
    9001: "Tor relay (ORPort)",
    9030: "Tor directory (DirPort)",
    12345: "NetBus",
    31337: "Back Orifice / elite backdoor",
}
METASPLOIT_PORTS = frozenset({4444, 31337})
# States where the responder answered (Zeek conn_state); S0/REJ/OTH are unanswered probes.
ANSWERED_STATES = frozenset({"SF", "S1", "S2", "S3", "RSTO", "RSTR", "RSTOS0"})


def rule(event):
    if event.get("id.resp_p") not in SUSPICIOUS_PORTS:
        return False
    return event.get("conn_state") in ANSWERED_STATES and is_outbound(event)


def title(event):
    port = event.get("id.resp_p")
    return (
        f"[{event.get('id.orig_h')}] connected to [{event.get('id.resp_h')}:{port}] "
        f"({SUSPICIOUS_PORTS.get(port, 'suspicious port')})"
    )


def dedup(event):
    return f"{event.get('id.orig_h')}:{event.get('id.resp_h')}:{event.get('id.resp_p')}"


def severity(event):
    if event.get("id.resp_p") in METASPLOIT_PORTS:
        return "HIGH"
    return "DEFAULT"


def alert_context(event):
    context = zeek_context(event)
    context["port_meaning"] = SUSPICIOUS_PORTS.get(event.get("id.resp_p"))
    context["conn_state"] = event.get("conn_state")
    context["orig_bytes"] = event.get("orig_bytes")
    context["resp_bytes"] = event.get("resp_bytes")
    context["duration"] = event.get("duration")
    return context

#!/usr/bin/env python3
"""Writes the nginx benchmark upstream into DIR: reply fixtures shaped like
real providers' replies (bodies, SSE streams and response headers) and an
nginx.conf that serves each one, to POST, under its own API root:

    http://127.0.0.1:PORT/<fixture>/v1/chat/completions   (OpenAI fixtures)
    http://127.0.0.1:PORT/<fixture>/v1/messages           (Anthropic fixture)

    bench/nginx/gen_fixtures.py DIR PORT      # then: nginx -p DIR -c DIR/nginx.conf -e DIR/error.log
    bench/nginx/gen_fixtures.py --list        # fixture names and their API kind

Where the shapes come from (facts only, no text copied):
  * OpenAI chat.completion bodies and response headers: a captured
    `curl -i` of POST api.openai.com/v1/chat/completions (March 2025) in the
    public README of github.com/yasuota/FastlyAIAccelerator-OpenAI, and the
    openai-python / openai-node issues about reading x-ratelimit-* headers.
    OpenAI pretty-prints non-streamed bodies with two-space indentation; the
    header set is date, content-type, access-control-expose-headers,
    openai-organization, openai-processing-ms, openai-project, openai-version,
    x-envoy-upstream-service-time, x-ratelimit-{limit,remaining,reset}-
    {requests,tokens}, x-request-id, strict-transport-security,
    cf-cache-status, two set-cookie (__cf_bm ~ 170 characters of value,
    _cfuvid ~ 90), x-content-type-options, server: cloudflare, cf-ray, alt-svc.
  * chat.completion.chunk SSE: OpenAI's streaming reference (first delta has
    role and empty content, usage: null on every chunk when
    stream_options.include_usage is set, a last chunk with choices: [] and the
    usage, then `data: [DONE]`) and the per-chunk "obfuscation" padding field
    OpenAI added in 2025 (seen in public Go SDK tests of chat chunks).
  * Anthropic Messages SSE and headers: a public capture of a streamed
    POST api.anthropic.com/v1/messages (August 2025: request-id req_011...,
    anthropic-organization-id UUID, via: 1.1 google, cf-cache-status,
    X-Robots-Tag: none, server cloudflare, CF-RAY, content-type
    text/event-stream; charset=utf-8, chunked), and Anthropic's rate-limit
    documentation for the anthropic-ratelimit-{requests,tokens,input-tokens,
    output-tokens}-{limit,remaining,reset} family an API-key request gets.

nginx's own headers stay (Server: nginx instead of cloudflare, since stock
nginx cannot rename it; Date; Connection). Plain replies carry Content-Length;
streams go through the SSI filter (which has nothing to expand) only so that
nginx drops Content-Length and sends them chunked, as providers do.
"""
import json
import os
import random
import sys

CREATED = 1755137933
OPENAI_MODEL = "gpt-4o-mini-2024-07-18"
FINGERPRINT = "fp_560af6e559"
ANTHROPIC_MODEL = "claude-3-5-haiku-20241022"

rng = random.Random(20250814)  # fixed seed: the same bytes every run


def b62(n):
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
    return "".join(rng.choice(alphabet) for _ in range(n))


def hexs(n):
    return "".join(rng.choice("0123456789abcdef") for _ in range(n))


# Prose an assistant might write: quotes, newlines, a code block with
# backslashes and tabs, and non-ASCII (accents, dashes, curly quotes, arrows,
# CJK, an emoji), so a parser really has to unescape.
PARAGRAPHS = [
    "The build is green: all 412 tests passed on \"main\" after the retry fix landed.",
    "Summary \u2014 the flaky test in `net/pool_test.cc` was caused by a race between "
    "the idle timer and the \u201creturn to pool\u201d path; it now holds the lock across both.",
    "Next steps:\n1. Re-enable the nightly soak job.\n2. Bump the client to v0.9.3.\n"
    "3. Watch p99 latency for a day \u2192 roll back if it regresses by >5%.",
    "```cpp\nif (auto r = pool.acquire(\"api.example.com\", 443); !r.ok()) {\n"
    "\tLOG(WARNING) << \"acquire failed: \" << r.error() << \"\\n\";\n}\n```",
    "Caf\u00e9-style notes from the review: na\u00efve retries doubled the load; jittered "
    "backoff (base 250\u202fms, cap 8\u202fs) keeps it flat. \u8fd9\u4e2a\u4fee\u590d\u5f88\u597d "
    "\U0001F680",
    "Paths on Windows look like C:\\\\Users\\\\ci\\\\build and the log said: "
    "'connection reset by peer' (errno 104) \u2026 twice.",
]


def prose(approx_chars):
    out, i = [], 0
    while sum(len(p) + 2 for p in out) < approx_chars:
        out.append(PARAGRAPHS[i % len(PARAGRAPHS)])
        i += 1
    text = "\n\n".join(out)
    return text[:approx_chars] if len(text) > approx_chars * 1.2 else text


def tokens_of(text):
    return max(1, len(text.encode()) // 4)


def openai_usage(prompt, completion):
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
        "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
        "completion_tokens_details": {
            "reasoning_tokens": 0,
            "audio_tokens": 0,
            "accepted_prediction_tokens": 0,
            "rejected_prediction_tokens": 0,
        },
    }


def openai_plain(content):
    body = {
        "id": "chatcmpl-" + b62(29),
        "object": "chat.completion",
        "created": CREATED,
        "model": OPENAI_MODEL,
        "choices": [{
            "index": 0,
            "message": {"role": "assistant", "content": content, "refusal": None, "annotations": []},
            "logprobs": None,
            "finish_reason": "stop",
        }],
        "usage": openai_usage(24, tokens_of(content)),
        "service_tier": "default",
        "system_fingerprint": FINGERPRINT,
    }
    return (json.dumps(body, indent=2, ensure_ascii=False) + "\n").encode()


def split_tokens(text, n):
    """Splits text into n pieces of a few characters, as a tokenizer would."""
    cuts = sorted(rng.sample(range(1, len(text)), n - 1))
    return [text[a:b] for a, b in zip([0] + cuts, cuts + [len(text)])]


def openai_stream(events):
    """events = total SSE data events before [DONE]: role, contents, finish, usage."""
    cid = "chatcmpl-" + b62(29)
    text = prose((events - 3) * 6)
    pieces = split_tokens(text, events - 3)

    def chunk(choices, usage=None):
        obj = {"id": cid, "object": "chat.completion.chunk", "created": CREATED, "model": OPENAI_MODEL,
               "service_tier": "default", "system_fingerprint": FINGERPRINT, "choices": choices,
               "usage": usage, "obfuscation": b62(rng.randint(2, 14))}
        return "data: " + json.dumps(obj, separators=(",", ":"), ensure_ascii=False) + "\n\n"

    def choice(delta, finish=None):
        return [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}]

    out = [chunk(choice({"role": "assistant", "content": "", "refusal": None}))]
    out += [chunk(choice({"content": p})) for p in pieces]
    out.append(chunk(choice({}, "stop")))
    out.append(chunk([], openai_usage(24, len(pieces))))
    out.append("data: [DONE]\n\n")
    return "".join(out).encode()


def anthropic_stream(deltas):
    text = prose(deltas * 9)
    pieces = split_tokens(text, deltas)

    def ev(name, obj):
        return "event: %s\ndata: %s\n\n" % (name, json.dumps(obj, separators=(",", ":"), ensure_ascii=False))

    out = [ev("message_start", {"type": "message_start", "message": {
        "id": "msg_01" + b62(22), "type": "message", "role": "assistant", "model": ANTHROPIC_MODEL,
        "content": [], "stop_reason": None, "stop_sequence": None,
        "usage": {"input_tokens": 731, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0,
                  "output_tokens": 1, "service_tier": "standard"}}})]
    out.append(ev("content_block_start",
                  {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}))
    out.append("event: ping\ndata: {\"type\": \"ping\"}\n\n")  # Anthropic sends this one with a space
    out += [ev("content_block_delta", {"type": "content_block_delta", "index": 0,
                                        "delta": {"type": "text_delta", "text": p}}) for p in pieces]
    out.append(ev("content_block_stop", {"type": "content_block_stop", "index": 0}))
    out.append(ev("message_delta", {"type": "message_delta",
                                    "delta": {"stop_reason": "end_turn", "stop_sequence": None},
                                    "usage": {"output_tokens": tokens_of(text)}}))
    out.append(ev("message_stop", {"type": "message_stop"}))
    return "".join(out).encode()


def openai_headers(streaming):
    now = "Thu, 14 Aug 2025 02:18:53 GMT"
    later = "Thu, 14-Aug-25 02:48:53 GMT"
    cf_bm = "%s-%d-1.0.1.1-%s" % (b62(43), CREATED, b62(107))
    cfuvid = "%s-%d%03d-0.0.1.1-604800000" % (b62(43), CREATED, rng.randint(0, 999))
    return [
        ("access-control-expose-headers", "X-Request-ID"),
        ("openai-organization", "user-" + b62(24).lower()),
        ("openai-processing-ms", "182" if streaming else "408"),
        ("openai-project", "proj_" + b62(24)),
        ("openai-version", "2020-10-01"),
        ("x-envoy-upstream-service-time", "186" if streaming else "412"),
        ("x-ratelimit-limit-requests", "10000"),
        ("x-ratelimit-limit-tokens", "10000000"),
        ("x-ratelimit-remaining-requests", "9999"),
        ("x-ratelimit-remaining-tokens", "9999976"),
        ("x-ratelimit-reset-requests", "6ms"),
        ("x-ratelimit-reset-tokens", "0s"),
        ("x-request-id", "req_" + hexs(32)),
        ("strict-transport-security", "max-age=31536000; includeSubDomains; preload"),
        ("cf-cache-status", "DYNAMIC"),
        ("set-cookie", "__cf_bm=%s; path=/; expires=%s; domain=.api.openai.com; HttpOnly; Secure; SameSite=None"
         % (cf_bm, later)),
        ("set-cookie", "_cfuvid=%s; path=/; domain=.api.openai.com; HttpOnly; Secure; SameSite=None" % cfuvid),
        ("x-content-type-options", "nosniff"),
        ("cf-ray", hexs(16) + "-IAD"),
        ("alt-svc", 'h3=":443"; ma=86400'),
    ], now


def anthropic_headers():
    return [
        ("cache-control", "no-cache"),
        ("anthropic-ratelimit-input-tokens-limit", "400000"),
        ("anthropic-ratelimit-input-tokens-remaining", "400000"),
        ("anthropic-ratelimit-input-tokens-reset", "2025-08-14T02:18:53Z"),
        ("anthropic-ratelimit-output-tokens-limit", "80000"),
        ("anthropic-ratelimit-output-tokens-remaining", "80000"),
        ("anthropic-ratelimit-output-tokens-reset", "2025-08-14T02:18:54Z"),
        ("anthropic-ratelimit-requests-limit", "4000"),
        ("anthropic-ratelimit-requests-remaining", "3999"),
        ("anthropic-ratelimit-requests-reset", "2025-08-14T02:18:53Z"),
        ("anthropic-ratelimit-tokens-limit", "480000"),
        ("anthropic-ratelimit-tokens-remaining", "480000"),
        ("anthropic-ratelimit-tokens-reset", "2025-08-14T02:18:53Z"),
        ("request-id", "req_011C" + b62(20)),
        ("strict-transport-security", "max-age=31536000; includeSubDomains; preload"),
        ("anthropic-organization-id", "%s-%s-%s-%s-%s" % (hexs(8), hexs(4), hexs(4), hexs(4), hexs(12))),
        ("via", "1.1 google"),
        ("cf-cache-status", "DYNAMIC"),
        ("X-Robots-Tag", "none"),
        ("CF-RAY", hexs(16) + "-SJC"),
    ]


# name -> (api kind, body builder, streaming)
FIXTURES = {
    "plain-short": ("openai", lambda: openai_plain(prose(60)), False),
    "plain-4k": ("openai", lambda: openai_plain(prose(3500)), False),
    "plain-64k": ("openai", lambda: openai_plain(prose(67000)), False),
    "stream-24": ("openai", lambda: openai_stream(24), True),
    "stream-500": ("openai", lambda: openai_stream(500), True),
    "anthropic-stream": ("anthropic", lambda: anthropic_stream(24), True),
}


def nginx_quote(value):
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def main():
    if sys.argv[1:] == ["--list"]:
        for name, (kind, _, streaming) in FIXTURES.items():
            print(name, kind, "stream" if streaming else "plain")
        return
    if len(sys.argv) != 3:
        sys.exit("usage: gen_fixtures.py DIR PORT | --list")
    root, port = os.path.abspath(sys.argv[1]), int(sys.argv[2])
    locations = []
    for name, (kind, build, streaming) in FIXTURES.items():
        leaf = "v1/messages" if kind == "anthropic" else "v1/chat/completions"
        path = os.path.join(root, "www", name, leaf)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as f:
            f.write(build())
        headers = anthropic_headers() if kind == "anthropic" else openai_headers(streaming)[0]
        lines = ["    location /%s/ {" % name]
        if streaming:
            lines += ["      default_type text/event-stream;", "      charset utf-8;",
                      "      charset_types text/event-stream;", "      ssi on;", "      ssi_types text/event-stream;"]
        else:
            lines.append("      default_type application/json;")
        lines += ["      add_header %s %s;" % (k, nginx_quote(v)) for k, v in headers]
        # Static files answer POST with 405; redirect that to the same URI
        # (internal redirects become GET) with the status replaced by 200.
        lines += ["      error_page 405 =200 $uri;", "    }"]
        locations.append("\n".join(lines))
    here = os.path.dirname(os.path.abspath(__file__))
    with open(os.path.join(here, "nginx.conf.in")) as f:
        conf = f.read()
    conf = conf.replace("@DIR@", root).replace("@PORT@", str(port)).replace("@LOCATIONS@", "\n".join(locations))
    os.makedirs(os.path.join(root, "tmp"), exist_ok=True)
    with open(os.path.join(root, "nginx.conf"), "w") as f:
        f.write(conf)


if __name__ == "__main__":
    main()

"""The error mapping, in one place: codes from any of the three body shapes, statuses,
non-JSON bodies, and 2xx answers that are not what the call expects."""

from __future__ import annotations

import httpx
import pytest

import atomemo_notebook as an
from atomemo_notebook.protocol import _errors as errors
from atomemo_notebook.protocol._call import Call
from atomemo_notebook.protocol._errors import error_class, make_api_error
from atomemo_notebook.protocol.atomemo import _calls as calls
from atomemo_notebook.protocol.atomemo._calls import CODES

from .conftest import collect, fault_key, ids, make_client, maybe


@pytest.mark.parametrize(
    ("status", "cls"),
    [(400, an.BadRequestError), (401, an.AuthenticationError), (403, an.PermissionDeniedError),
     (404, an.NotFoundError), (409, an.ConflictError), (422, an.UnprocessableEntityError),
     (429, an.RateLimitError), (500, an.InternalServerError), (503, an.InternalServerError),
     (418, an.APIError)],
)
def test_status_classes(status, cls):
    assert error_class(status, None) is cls


@pytest.mark.parametrize(
    ("code", "cls"),
    [("APP_OR_TRIGGER_NOT_FOUND", an.AppOrTriggerNotFoundError),
     ("CONVERSATION_NOT_FOUND", an.ConversationNotFoundError),
     ("CONVERSATION_USER_ID_MISMATCH", an.ConversationUserIdMismatchError),
     ("CONVERSATION_MESSAGE_MISMATCH", an.ConversationMessageMismatchError),
     ("PARENT_NOT_FOUND", an.ParentNotFoundError),
     ("TRIGGER_INPUTS_ERROR", an.TriggerInputsError),
     ("NOT_FOUND", an.MessageNotFoundError),
     ("UNRESUMABLE_STREAM", an.UnresumableStreamError)],
)
def test_code_wins_over_status(code, cls):
    assert error_class(500, code, CODES) is cls


@pytest.mark.parametrize(
    "body",
    ['{"code": "PARENT_NOT_FOUND", "message": "no parent"}',
     '{"error": {"code": "PARENT_NOT_FOUND", "message": "no parent"}}',
     '{"errorCode": "PARENT_NOT_FOUND", "message": "no parent"}'],
)
def test_code_is_read_from_each_body_shape(body):
    error = make_api_error(404, body, codes=CODES)
    assert isinstance(error, an.ParentNotFoundError)
    assert (error.code, error.message, error.status_code) == ("PARENT_NOT_FOUND", "no parent", 404)
    assert str(error) == "404 PARENT_NOT_FOUND: no parent"


def test_non_json_body_gives_status_and_an_excerpt():
    error = make_api_error(502, "<html>" + "bad gateway " * 100 + "</html>", reason="Bad Gateway")
    assert isinstance(error, an.InternalServerError) and error.code is None
    assert "502" in str(error) and "Bad Gateway" in str(error) and "bad gateway" in str(error)
    assert len(str(error)) < 400 and str(error).endswith("…")


async def test_plain_text_error_from_the_server(kind, server, echo):
    api = make_client(kind, server, max_retries=0,
                      headers={"X-Atomemo-Fault": f"status=503; plain=1; key={fault_key()}"})
    with pytest.raises(an.InternalServerError) as info:
        await maybe(api.send_message(**ids(echo), query="x", user_id="plain"))
    assert info.value.status_code == 503 and "upstream proxy error" in str(info.value)
    await maybe(api.close())


async def test_html_instead_of_an_event_stream_says_what_came_back(kind, server, echo):
    api = make_client(kind, server, headers={"X-Atomemo-Fault": f"html=1; key={fault_key()}"})
    with pytest.raises(an.APIResponseValidationError) as info:
        await collect(api.send_message(**ids(echo), query="x", user_id="html"))
    message = str(info.value)
    assert "text/event-stream" in message and "text/html" in message and "Please sign in" in message
    await maybe(api.close())


def test_timeouts_connect_five_seconds_and_streams_never_httpx_default():
    client = an.Client("k", base_url="http://127.0.0.1:9/api")
    assert client.timeout == 30.0
    call = calls.send_message(app_id="a", trigger_id="t", query="q", user_id="u")
    request = client._build(client._http, call, client._deadline(call))
    timeout = request.extensions["timeout"]
    assert timeout["connect"] == 5.0 and timeout["read"] == 60.0
    custom = an.Client("k", base_url="http://127.0.0.1:9/api", stream_idle_timeout=7.5)
    resume = calls.resume_stream("m")
    streamed = custom._build(custom._http, resume, custom._deadline(resume))
    assert streamed.extensions["timeout"]["read"] == 7.5
    # A plain call's per-read timeout never reaches past the call's deadline.
    short = an.Client("k", base_url="http://127.0.0.1:9/api", timeout=2.0)
    get = calls.get_messages("c")
    assert short._build(short._http, get, short._deadline(get)).extensions["timeout"]["read"] <= 2.0
    assert httpx.Timeout(5.0).read == 5.0  # the default we must not inherit


def test_key_is_sent_only_to_the_api_host():
    client = an.Client("secret-key-value", base_url="https://api.example/api")
    def build(call):
        return client._build(client._http, call, client._deadline(call))

    own = build(calls.get_messages("c"))
    assert own.headers["x-api-key"] == "secret-key-value"
    foreign = Call("GET", "https://api.example.evil/api/x", lambda b: b, absolute=True)
    assert "x-api-key" not in build(foreign).headers
    lookalike = Call("GET", "https://api.example/apix", lambda b: b, absolute=True)
    assert "x-api-key" not in build(lookalike).headers


def test_the_root_keeps_its_first_name():
    assert an.AtomemoError is an.ChatAPIError
    with pytest.raises(an.AtomemoError):
        raise an.ParentNotFoundError("no parent", status_code=404, code="PARENT_NOT_FOUND")
    for name in errors.__all__:
        assert issubclass(getattr(errors, name), an.ChatAPIError), name


def test_each_systems_codes_are_its_own():
    from atomemo_notebook.protocol._systems import SYSTEMS

    assert SYSTEMS["atomemo"].dialect.codes is CODES
    dify = SYSTEMS["dify"].dialect.codes
    # Without a system's codes the status decides; one system's code means nothing to another.
    assert error_class(404, "PARENT_NOT_FOUND") is an.NotFoundError
    assert error_class(404, "PARENT_NOT_FOUND", dify) is an.NotFoundError
    assert error_class(404, "not_found", dify) is an.ConversationNotFoundError
    assert error_class(404, "not_found", CODES) is an.NotFoundError
    assert isinstance(make_api_error(404, '{"code": "PARENT_NOT_FOUND", "message": "x"}'), an.NotFoundError)
    assert not isinstance(make_api_error(404, '{"code": "PARENT_NOT_FOUND", "message": "x"}'),
                          an.ParentNotFoundError)

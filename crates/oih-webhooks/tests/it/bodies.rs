//! Request bodies per content type (runtime.md §5.2) as `msg.data`, and the refusals.

use axum::http::StatusCode;
use serde_json::{Value, json};

use crate::support::{BODY_LIMIT, Hub, hook_uri, open_flow};

/// POSTs `body` as `content_type` and returns the published `msg.data`.
async fn data_for(hub: &mut Hub, uri: &str, content_type: &str, body: Vec<u8>) -> Value {
    let (status, answer) = hub.hook("POST", uri, Some(content_type), body).await;
    assert_eq!(status, StatusCode::OK, "{content_type}: {answer}");
    hub.expect_execute().await.payload["msg"]["data"].clone()
}

#[tokio::test]
async fn each_content_type_becomes_data() {
    let mut hub = Hub::start().await;
    let flow = open_flow(&hub).await;
    let uri = hook_uri(&flow);

    // Floats keep their digits (OIH's float-preservation test).
    let data = data_for(
        &mut hub,
        &uri,
        "application/json",
        br#"{"a":{"b":[1,2.50]}}"#.to_vec(),
    )
    .await;
    assert_eq!(data, json!({"a": {"b": [1, 2.50]}}));
    assert_eq!(
        data_for(&mut hub, &uri, "application/json", Vec::new()).await,
        json!({})
    );
    // OIH parses text/plain as JSON.
    let data = data_for(
        &mut hub,
        &uri,
        "text/plain; charset=utf-8",
        br#"{"t":true}"#.to_vec(),
    )
    .await;
    assert_eq!(data, json!({"t": true}));

    let data = data_for(
        &mut hub,
        &uri,
        "application/x-www-form-urlencoded",
        b"test=test&list=1&list=2&sp=a+b".to_vec(),
    )
    .await;
    assert_eq!(
        data,
        json!({"test": "test", "list": ["1", "2"], "sp": "a b"})
    );

    let xml = b"<?xml version=\"1.0\"?>\n<SOAP-ENV:Envelope xmlns:SOAP-ENV=\"http://s/\">\n  <SOAP-ENV:Body>\n    <Req Id=\"7\"><Item>a</Item><Item>b</Item><Note> keep </Note></Req>\n  </SOAP-ENV:Body>\n</SOAP-ENV:Envelope>";
    let expected = json!({"SOAP-ENV-Envelope": {
        "_attr": {"xmlns:SOAP-ENV": "http://s/"},
        "SOAP-ENV-Body": {"Req": {"_attr": {"Id": "7"}, "Item": ["a", "b"], "Note": " keep "}}
    }});
    for ct in ["application/xml", "text/xml", "application/soap+xml"] {
        assert_eq!(
            data_for(&mut hub, &uri, ct, xml.to_vec()).await,
            expected,
            "{ct}"
        );
    }

    // Text and binary payloads travel in the message (OIH writes them to a temp file and
    // sends `{}`).
    let data = data_for(&mut hub, &uri, "text/csv", b"a,b\n1,2\n".to_vec()).await;
    assert_eq!(
        data,
        json!({"contentType": "text/csv", "encoding": "utf-8", "content": "a,b\n1,2\n"})
    );
    // Multipart: fields as OIH; files (OIH: temp files, never sent) in the message.
    let form = b"--B\r\nContent-Disposition: form-data; name=\"name\"\r\n\r\nAda\r\n--B\r\nContent-Disposition: form-data; name=\"doc\"; filename=\"a.txt\"\r\nContent-Type: text/plain\r\n\r\nhi\r\n--B--\r\n";
    let data = data_for(
        &mut hub,
        &uri,
        "multipart/form-data; boundary=B",
        form.to_vec(),
    )
    .await;
    assert_eq!(
        data,
        json!({"name": "Ada", "doc": {"filename": "a.txt", "contentType": "text/plain",
            "encoding": "base64", "content": "aGk="}})
    );
    let jpeg = vec![0xff, 0xd8, 0xff, 0xe0, 0x00];
    let data = data_for(&mut hub, &uri, "image/jpeg", jpeg).await;
    assert_eq!(
        data,
        json!({"contentType": "image/jpeg", "encoding": "base64", "content": "/9j/4AA="})
    );
    hub.shutdown().await;
}

#[tokio::test]
async fn bad_bodies_are_refused_and_publish_nothing() {
    let mut hub = Hub::start().await;
    let flow = open_flow(&hub).await;
    let uri = hook_uri(&flow);
    let cases: Vec<(Option<&str>, Vec<u8>, StatusCode, &str)> = vec![
        (
            None,
            b"{}".to_vec(),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "Content-Type header is missing",
        ),
        (
            Some("application/x-unknown"),
            b"x".to_vec(),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "Unsupported Content-Type: application/x-unknown",
        ),
        (
            Some("multipart/form-data; boundary=x"),
            b"--x\r\nno end".to_vec(),
            StatusCode::BAD_REQUEST,
            "Invalid multipart body",
        ),
        (
            Some("application/json"),
            b"{\"a\":".to_vec(),
            StatusCode::BAD_REQUEST,
            "Invalid JSON body",
        ),
        (
            Some("application/json"),
            b"\"scalar\"".to_vec(),
            StatusCode::BAD_REQUEST,
            "Invalid JSON body",
        ),
        (
            Some("application/xml"),
            b"<a><b></a>".to_vec(),
            StatusCode::BAD_REQUEST,
            "Invalid XML body",
        ),
        (
            Some("application/xml"),
            b"not xml".to_vec(),
            StatusCode::BAD_REQUEST,
            "Invalid XML body",
        ),
        (
            Some("text/csv"),
            vec![0xff, 0xfe],
            StatusCode::BAD_REQUEST,
            "not valid UTF-8",
        ),
        (
            Some("application/json"),
            vec![b' '; BODY_LIMIT + 1],
            StatusCode::PAYLOAD_TOO_LARGE,
            "Payload too large",
        ),
    ];
    for (content_type, body, status, message) in cases {
        let (got, answer) = hub.hook("POST", &uri, content_type, body).await;
        assert_eq!(got, status, "{content_type:?}: {answer}");
        let error = answer["error"].as_str().expect("error message");
        assert!(error.contains(message), "{content_type:?}: {error}");
    }
    // A body of exactly the limit passes.
    let mut at_limit = vec![b' '; BODY_LIMIT - 2];
    at_limit.splice(0..0, *b"{}");
    let (status, _) = hub
        .hook_with(
            "POST",
            &uri,
            Some("application/json"),
            at_limit,
            &[("x-request-id", "fits")],
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    hub.expect_only("fits").await;
    hub.shutdown().await;
}

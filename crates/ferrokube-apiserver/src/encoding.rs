//! Response bodies built from cached JSON without re-serializing objects: list
//! documents (`PodList` ...) and watch event frames.

use bytes::{BufMut, Bytes, BytesMut};
use ferrokube_api::gojson::Order;
use serde_json::json;
#[cfg(test)]
use serde_json::Value;

use crate::watchcache::EventType;

/// The metadata of a list response.
#[derive(Clone, Debug, Default)]
pub(crate) struct ListMeta {
    pub resource_version: String,
    pub continue_token: Option<String>,
    pub remaining_item_count: Option<i64>,
}

/// `{"kind":"<Kind>List","apiVersion":..,"metadata":{..},"items":[..]}\n`
/// from the items' JSON: members in the order Kubernetes writes a list's
/// (`ListMeta`'s too), ending with the newline its encoder writes.
pub(crate) fn list_body<'a>(
    list_kind: &str,
    api_version: &str,
    meta: &ListMeta,
    items: impl IntoIterator<Item = &'a [u8]>,
) -> Bytes {
    let mut head = Vec::with_capacity(128);
    head.extend_from_slice(b"{\"kind\":");
    ferrokube_api::gojson::write(&mut head, list_kind);
    head.extend_from_slice(b",\"apiVersion\":");
    ferrokube_api::gojson::write(&mut head, api_version);
    head.extend_from_slice(b",\"metadata\":{\"resourceVersion\":");
    ferrokube_api::gojson::write(&mut head, &meta.resource_version);
    if let Some(c) = &meta.continue_token {
        head.extend_from_slice(b",\"continue\":");
        ferrokube_api::gojson::write(&mut head, c);
    }
    if let Some(n) = meta.remaining_item_count {
        head.extend_from_slice(b",\"remainingItemCount\":");
        head.extend_from_slice(n.to_string().as_bytes());
    }
    head.extend_from_slice(b"},\"items\":[");
    let mut out = BytesMut::with_capacity(head.len() + 64);
    out.put_slice(&head);
    for (i, item) in items.into_iter().enumerate() {
        if i > 0 {
            out.put_u8(b',');
        }
        out.put_slice(item);
    }
    out.put_slice(b"]}\n");
    out.freeze()
}

/// One watch event line: `{"type":"ADDED","object":<json>}\n`.
pub(crate) fn watch_frame(kind: EventType, object_json: &[u8]) -> Bytes {
    frame(kind.as_str(), object_json)
}

fn frame(kind: &str, object_json: &[u8]) -> Bytes {
    let mut out = BytesMut::with_capacity(object_json.len() + 32);
    out.put_slice(b"{\"type\":\"");
    out.put_slice(kind.as_bytes());
    out.put_slice(b"\",\"object\":");
    out.put_slice(object_json);
    out.put_slice(b"}\n");
    out.freeze()
}

/// A BOOKMARK event: an object of the watched kind carrying only the
/// resourceVersion (and, at the end of the initial events of a streaming
/// list, the `k8s.io/initial-events-end` annotation).
pub(crate) fn bookmark_frame(
    kind: &str,
    api_version: &str,
    resource_version: &str,
    initial_events_end: bool,
) -> Bytes {
    static BOOKMARK: Order = Order(&[("kind", None), ("apiVersion", None), ("metadata", None)]);
    let mut metadata = json!({"resourceVersion": resource_version});
    if initial_events_end {
        metadata["annotations"] = json!({"k8s.io/initial-events-end": "true"});
    }
    let obj = json!({"kind": kind, "apiVersion": api_version, "metadata": metadata});
    frame(
        "BOOKMARK",
        &ferrokube_api::gojson::to_vec_ordered(&obj, &BOOKMARK),
    )
}

/// An ERROR event carrying a `Status` object (e.g. 410 Expired).
pub(crate) fn error_frame(status_json: &[u8]) -> Bytes {
    frame("ERROR", status_json)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn list_body_is_valid_json() {
        let items: Vec<&[u8]> = vec![
            br#"{"metadata":{"name":"a"}}"#,
            br#"{"metadata":{"name":"b"}}"#,
        ];
        let meta = ListMeta {
            resource_version: "12".into(),
            continue_token: Some("tok".into()),
            remaining_item_count: Some(3),
        };
        let body = list_body("PodList", "v1", &meta, items);
        assert_eq!(
            std::str::from_utf8(&body).unwrap(),
            concat!(
                r#"{"kind":"PodList","apiVersion":"v1","metadata":{"resourceVersion":"12","continue":"tok","remainingItemCount":3},"#,
                r#""items":[{"metadata":{"name":"a"}},{"metadata":{"name":"b"}}]}"#,
                "\n"
            )
        );
        let v: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(v["kind"], "PodList");
        assert_eq!(v["apiVersion"], "v1");
        assert_eq!(v["metadata"]["resourceVersion"], "12");
        assert_eq!(v["metadata"]["continue"], "tok");
        assert_eq!(v["metadata"]["remainingItemCount"], 3);
        assert_eq!(v["items"][1]["metadata"]["name"], "b");
        let empty = list_body("PodList", "v1", &ListMeta::default(), std::iter::empty());
        let v: Value = serde_json::from_slice(&empty).unwrap();
        assert_eq!(v["items"], json!([]));
        assert!(v["metadata"].get("continue").is_none());
    }

    #[test]
    fn frames() {
        let f = watch_frame(EventType::Modified, br#"{"a":1}"#);
        assert_eq!(&f[..], b"{\"type\":\"MODIFIED\",\"object\":{\"a\":1}}\n");
        let b = bookmark_frame("Pod", "v1", "77", true);
        assert!(b.starts_with(
            br#"{"type":"BOOKMARK","object":{"kind":"Pod","apiVersion":"v1","metadata":{"#
        ));
        let v: Value = serde_json::from_slice(&b[..b.len() - 1]).unwrap();
        assert_eq!(v["type"], "BOOKMARK");
        assert_eq!(v["object"]["metadata"]["resourceVersion"], "77");
        assert_eq!(
            v["object"]["metadata"]["annotations"]["k8s.io/initial-events-end"],
            "true"
        );
    }
}

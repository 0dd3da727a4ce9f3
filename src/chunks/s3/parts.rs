//! S3's XML answers that object_store does not read for us: a ListParts page and an error
//! document. Pure (bytes in, values out), so they are tested on recorded answers.
//!
//! object_store has no ListParts; the `Bucket` presigns the request with object_store's
//! signer and reads the answer here. Unknown elements are ignored (stores add their own).

use serde::Deserialize;

/// One part S3 holds for a multipart upload.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredPart {
    /// Its number (1 to 10,000).
    pub number: u32,
    /// Its ETag, as S3 gives it (quotes included): what completion needs.
    pub etag: String,
    /// Its size in bytes.
    pub size: u64,
}

/// One page of a ListParts answer.
#[derive(Debug, PartialEq, Eq)]
pub struct PartsPage {
    /// The parts, in part-number order.
    pub parts: Vec<StoredPart>,
    /// Where the next page starts (`part-number-marker`), when the answer was truncated.
    pub next_marker: Option<u32>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ListPartsResult {
    #[serde(default)]
    is_truncated: Option<String>,
    #[serde(default)]
    next_part_number_marker: Option<String>,
    #[serde(default, rename = "Part")]
    parts: Vec<PartXml>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct PartXml {
    part_number: u32,
    #[serde(rename = "ETag")]
    e_tag: String,
    size: u64,
}

/// Reads a `ListPartsResult` document.
pub fn parse_list_parts(xml: &[u8]) -> Result<PartsPage, String> {
    let text = std::str::from_utf8(xml).map_err(|_| "the ListParts answer is not UTF-8".to_string())?;
    let doc: ListPartsResult =
        quick_xml::de::from_str(text).map_err(|e| format!("unreadable ListParts answer ({e})"))?;
    let truncated = doc.is_truncated.as_deref().map(str::trim) == Some("true");
    let next_marker = match doc.next_part_number_marker.as_deref().map(str::trim) {
        Some(m) if truncated && !m.is_empty() => {
            Some(m.parse::<u32>().map_err(|_| format!("unreadable NextPartNumberMarker {m:?}"))?)
        }
        _ if truncated => return Err("a truncated ListParts answer without NextPartNumberMarker".into()),
        _ => None,
    };
    let mut parts: Vec<StoredPart> =
        doc.parts.into_iter().map(|p| StoredPart { number: p.part_number, etag: p.e_tag, size: p.size }).collect();
    parts.sort_by_key(|p| p.number);
    Ok(PartsPage { parts, next_marker })
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ErrorXml {
    code: String,
    #[serde(default)]
    message: Option<String>,
}

/// The code and message of an S3 error document (`<Error><Code>…`), if it is one.
pub fn parse_error(xml: &[u8]) -> Option<(String, String)> {
    let text = std::str::from_utf8(xml).ok()?;
    let doc: ErrorXml = quick_xml::de::from_str(text).ok()?;
    Some((doc.code, doc.message.unwrap_or_default()))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    /// AWS's documented example, trimmed.
    const AWS: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<ListPartsResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">
  <Bucket>example-bucket</Bucket>
  <Key>example-object</Key>
  <UploadId>XXBsb2FkIElEIGZvciBlbHZpbmcncyVcdS1tb3ZpZS5tMnRzEEEwbG9hZA</UploadId>
  <Initiator><ID>arn:aws:iam::111122223333:user/some-user</ID><DisplayName>umat</DisplayName></Initiator>
  <StorageClass>STANDARD</StorageClass>
  <PartNumberMarker>1</PartNumberMarker>
  <NextPartNumberMarker>3</NextPartNumberMarker>
  <MaxParts>2</MaxParts>
  <IsTruncated>true</IsTruncated>
  <Part>
    <PartNumber>3</PartNumber>
    <LastModified>2010-11-10T20:48:33.000Z</LastModified>
    <ETag>&quot;aaaa18db4cc2f85cedef654fccc4a4x8&quot;</ETag>
    <Size>10485760</Size>
  </Part>
  <Part>
    <PartNumber>2</PartNumber>
    <LastModified>2010-11-10T20:48:34.000Z</LastModified>
    <ETag>"7778aef83f66abc1fa1e8477f296d394"</ETag>
    <Size>10485760</Size>
  </Part>
</ListPartsResult>"#;

    #[test]
    fn a_list_parts_page_reads_with_its_marker() {
        let page = parse_list_parts(AWS.as_bytes()).unwrap();
        assert_eq!(page.next_marker, Some(3));
        assert_eq!(
            page.parts,
            vec![
                StoredPart { number: 2, etag: "\"7778aef83f66abc1fa1e8477f296d394\"".into(), size: 10485760 },
                StoredPart { number: 3, etag: "\"aaaa18db4cc2f85cedef654fccc4a4x8\"".into(), size: 10485760 },
            ]
        );
        let last = r#"<ListPartsResult><IsTruncated>false</IsTruncated><NextPartNumberMarker></NextPartNumberMarker></ListPartsResult>"#;
        assert_eq!(parse_list_parts(last.as_bytes()).unwrap(), PartsPage { parts: vec![], next_marker: None });
    }

    #[test]
    fn unreadable_answers_are_errors() {
        for bad in [
            &b"not xml"[..],
            b"<ListPartsResult><Part><PartNumber>x</PartNumber><ETag>e</ETag><Size>1</Size></Part></ListPartsResult>",
            b"<ListPartsResult><IsTruncated>true</IsTruncated></ListPartsResult>",
            b"\xff\xfe",
        ] {
            assert!(parse_list_parts(bad).is_err(), "{}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn error_documents_give_their_code() {
        let doc = br#"<?xml version="1.0" encoding="UTF-8"?>
<Error><Code>NoSuchUpload</Code><Message>The specified multipart upload does not exist.</Message><RequestId>1</RequestId></Error>"#;
        let (code, message) = parse_error(doc).unwrap();
        assert_eq!(code, "NoSuchUpload");
        assert!(message.contains("does not exist"));
        assert_eq!(parse_error(b"<html>gateway timeout</html>"), None);
    }
}

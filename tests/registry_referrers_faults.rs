//! The raw registry client of `src/store/registry/referrers.rs` (referrers
//! API, referrer manifests, `DELETE`, paginated tags) under trouble:
//!
//! - through the fault proxy (`squizzle_test_support::fault_proxy`) in front of a
//!   real registry, bursts of 503 are ridden out by the retry policy
//!   (`retry.rs`), for listing and for the tag-schema index update, and a
//!   registry that stays unavailable ends in exit 3 naming the attempts;
//! - against the scripted fake registry (`squizzle_test_support::fake_registry`), a
//!   token realm on another host never receives the password (exit 4), and an
//!   expired token is exchanged again exactly once (a second 401 is final,
//!   exit 4).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use squizzle::core::digest::Digest;
use squizzle::core::oci::{self, Descriptor};
use squizzle::store::registry::referrers::ReferrerBlob;
use squizzle::store::registry::{RegistryRef, RegistryStore};
use squizzle::store::{StoreError, Target};
use squizzle_test_support::fake_registry::{FakeRegistry, Response};
use squizzle_test_support::fault_proxy::{Fault, FaultProxy, Rule};
use squizzle_test_support::registry::{Registry, RegistryOptions};

const REPO: &str = "acme/migrations";
const BUNDLE: &str = "application/vnd.dev.sigstore.bundle.v0.3+json";
const USER: &str = "squizzle-ci";
const PASSWORD: &str = "referrers-Test-passw0rd";

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// The exit code the CLI gives `e`.
fn exit_code(e: StoreError) -> u8 {
    squizzle::cli::exit_code_for(&squizzle::ops::Error::Store(e)).code()
}

fn store_at(host: &str, opts: squizzle::store::registry::RegistryOptions) -> RegistryStore {
    RegistryStore::new(
        RegistryRef::parse(&format!("{host}/{REPO}")).unwrap(),
        &opts,
    )
}

struct Setup {
    // Field order: the proxy goes before the registry behind it.
    proxy: FaultProxy,
    registry: Registry,
}

fn setup() -> Setup {
    let registry = Registry::start(RegistryOptions::default());
    let upstream = format!("127.0.0.1:{}", registry.port()).parse().unwrap();
    Setup {
        proxy: FaultProxy::start(upstream),
        registry,
    }
}

/// A small OCI manifest pushed as `1.0.0` directly to the registry (not
/// through the proxy): the subject of the referrers.
fn subject(reg: &Registry) -> Descriptor {
    let config = reg.push_blob(REPO, b"{}");
    let manifest = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": oci::IMAGE_MANIFEST_MEDIA_TYPE,
        "config": {"mediaType": oci::EMPTY_MEDIA_TYPE, "digest": config, "size": 2},
        "layers": [{"mediaType": oci::EMPTY_MEDIA_TYPE, "digest": config, "size": 2}],
    }))
    .unwrap();
    reg.put_manifest(REPO, "1.0.0", oci::IMAGE_MANIFEST_MEDIA_TYPE, &manifest);
    Descriptor::new(
        oci::IMAGE_MANIFEST_MEDIA_TYPE,
        Digest::of(&manifest),
        manifest.len() as u64,
    )
}

fn push_referrer(
    rt: &tokio::runtime::Runtime,
    s: &RegistryStore,
    subject: &Descriptor,
) -> Descriptor {
    rt.block_on(s.attach_referrer(
        subject,
        BUNDLE,
        None,
        &[ReferrerBlob {
            media_type: BUNDLE,
            data: b"{\"note\":\"signature\"}",
        }],
        BTreeMap::from([("org.example.note".to_owned(), "signature".to_owned())]),
    ))
    .unwrap()
}

#[test]
fn the_tag_schema_index_update_and_referrers_listing_ride_out_bursts_of_503() {
    let s = setup();
    let subject = subject(&s.registry);
    let rt = rt();
    let store = store_at(&s.proxy.url(), Default::default());
    let burst = Fault::status(503);

    // The referrer manifest PUT and the referrers API probe (raw client), and
    // the index tag PUT (oci-client) each meet a burst.
    s.proxy.arm(
        Rule::times(burst.clone(), 3)
            .method("PUT")
            .path("/manifests/sha256:"),
    );
    s.proxy.arm(
        Rule::times(burst.clone(), 3)
            .method("GET")
            .path("/referrers/"),
    );
    s.proxy.arm(
        Rule::times(burst.clone(), 2)
            .method("PUT")
            .path("/manifests/sha256-"),
    );
    let sig = push_referrer(&rt, &store, &subject);
    assert_eq!(s.proxy.count(&burst), 8, "{:#?}", s.proxy.log());
    let (_, body) = s
        .registry
        .get_manifest(REPO, &format!("sha256-{}", subject.digest.hex()))
        .expect("the tag-schema index was written");
    let index: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(index["manifests"][0]["digest"], sig.digest.to_string());

    // Listing from a fresh store (the API is probed again) and the tag list.
    s.proxy.clear();
    s.proxy.arm(
        Rule::times(burst.clone(), 3)
            .method("GET")
            .path("/referrers/"),
    );
    s.proxy.arm(
        Rule::times(burst.clone(), 2)
            .method("GET")
            .path("/tags/list"),
    );
    let fresh = store_at(&s.proxy.url(), Default::default());
    assert_eq!(
        rt.block_on(fresh.referrers(&subject.digest, None)).unwrap(),
        vec![sig.clone()]
    );
    let tags = rt.block_on(fresh.tags()).unwrap();
    assert!(tags.contains(&"1.0.0".to_owned()), "{tags:?}");
    assert_eq!(s.proxy.count(&burst), 8 + 5, "{:#?}", s.proxy.log());
}

#[test]
fn referrers_on_a_registry_that_stays_unavailable_exit_3_naming_the_attempts() {
    let s = setup();
    let subject = subject(&s.registry);
    let rt = rt();
    let down = Fault::status(503);
    s.proxy.arm(Rule::forever(down.clone()).path("/referrers/"));
    let store = store_at(&s.proxy.url(), Default::default());
    let e = rt
        .block_on(store.referrers(&subject.digest, None))
        .unwrap_err();
    let text = e.to_string();
    assert!(
        text.contains("referrers: gave up after 5 attempts") && text.contains("503"),
        "{text}"
    );
    assert_eq!(exit_code(e), 3);
    assert_eq!(s.proxy.count(&down), 5, "five attempts, then give up");

    // A permanent refusal is not retried.
    s.proxy.clear();
    let forbidden = Fault::status(403);
    s.proxy
        .arm(Rule::forever(forbidden.clone()).path("/tags/list"));
    let e = rt.block_on(store.tags()).unwrap_err();
    assert_eq!(exit_code(e), 4);
    assert_eq!(s.proxy.count(&forbidden), 1);
}

fn with_password() -> squizzle::store::registry::RegistryOptions {
    squizzle::store::registry::RegistryOptions {
        username: Some(USER.into()),
        password: Some(PASSWORD.into()),
        ..Default::default()
    }
}

fn challenge(realm: &str) -> Response {
    Response::new(401)
        .header(
            "WWW-Authenticate",
            &format!(r#"Bearer realm="{realm}",service="fake",scope="repository:{REPO}:pull""#),
        )
        .header("Content-Type", "application/json")
        .body(r#"{"errors":[{"code":"UNAUTHORIZED","message":"authentication required","detail":{}}]}"#)
}

fn tag_page(tags: &[&str], next: Option<&str>) -> Response {
    let mut r = Response::new(200).header("Content-Type", "application/json");
    if let Some(n) = next {
        r = r.header("Link", &format!("<{n}>; rel=\"next\""));
    }
    r.body(serde_json::to_vec(&serde_json::json!({"name": REPO, "tags": tags})).unwrap())
}

#[test]
fn a_token_realm_on_another_host_gets_no_credentials_from_the_raw_client() {
    let realm = FakeRegistry::start("127.0.0.2", |_| {
        Response::new(200)
            .header("Content-Type", "application/json")
            .body(r#"{"token":"stolen-nothing","expires_in":300}"#)
    });
    let realm_url = format!("http://{}/token", realm.host());
    let reg = FakeRegistry::start("127.0.0.1", move |req| {
        if req.header("Authorization").is_some() {
            return tag_page(&["1.0.0"], None);
        }
        challenge(&realm_url)
    });
    let rt = rt();
    let store = store_at(&reg.host(), with_password());
    for e in [
        rt.block_on(store.tags()).unwrap_err(),
        rt.block_on(store.referrers(&Digest::of(b"subject"), None))
            .unwrap_err(),
        rt.block_on(store.delete_manifest(&Digest::of(b"x")))
            .unwrap_err(),
    ] {
        let text = e.to_string();
        assert!(
            text.contains(&realm.host())
                && text.contains("does not send the registry password")
                && !text.contains(PASSWORD),
            "{text}"
        );
        assert_eq!(exit_code(e), 4);
    }
    assert!(
        realm.requests().is_empty(),
        "the foreign realm was asked: {:?}",
        realm.requests()
    );
    assert!(
        reg.requests()
            .iter()
            .all(|r| r.header("Authorization").is_none()),
        "credentials went to the registry although it asked for a token"
    );
}

/// A token service on the registry's host handing out `tok-2`, `tok-3`, ...
fn token_service(issued: Arc<AtomicUsize>) -> FakeRegistry {
    FakeRegistry::start("127.0.0.1", move |req| {
        if !req
            .header("Authorization")
            .is_some_and(|a| a.starts_with("Basic "))
        {
            return Response::new(401);
        }
        let n = issued.fetch_add(1, Ordering::SeqCst) + 2;
        Response::new(200)
            .header("Content-Type", "application/json")
            .body(format!(r#"{{"token":"tok-{n}","expires_in":60}}"#))
    })
}

#[test]
fn an_expired_token_is_exchanged_again_once_and_the_request_retried() {
    let issued = Arc::new(AtomicUsize::new(0));
    let tokens = token_service(issued.clone());
    let realm_url = format!("http://{}/token", tokens.host());
    // `tok-1` (from `negotiate`, say) works for the first page, then expires.
    let tok1_uses = Arc::new(AtomicUsize::new(0));
    let uses = tok1_uses.clone();
    let reg = FakeRegistry::start("127.0.0.1", move |req| {
        let ok = match req.header("Authorization") {
            Some("Bearer tok-1") => uses.fetch_add(1, Ordering::SeqCst) == 0,
            Some("Bearer tok-2") => true,
            _ => false,
        };
        if !ok {
            return challenge(&realm_url);
        }
        if req.target.contains("last=") {
            tag_page(&["1.1.0"], None)
        } else {
            tag_page(
                &["1.0.0"],
                Some(&format!("/v2/{REPO}/tags/list?n=1&last=1.0.0")),
            )
        }
    });
    let rt = rt();
    let store = store_at(
        &reg.host(),
        squizzle::store::registry::RegistryOptions {
            token: Some("tok-1".into()),
            ..with_password()
        },
    );
    assert_eq!(rt.block_on(store.tags()).unwrap(), ["1.0.0", "1.1.0"]);
    assert_eq!(issued.load(Ordering::SeqCst), 1, "one token exchange");
    let asked = tokens.requests();
    assert!(
        asked[0].target.contains("service=fake") && asked[0].target.contains("scope="),
        "{asked:?}"
    );
    let auths: Vec<Option<String>> = reg
        .requests()
        .iter()
        .map(|r| r.header("Authorization").map(str::to_owned))
        .collect();
    assert_eq!(
        auths,
        [
            Some("Bearer tok-1".to_owned()),
            Some("Bearer tok-1".to_owned()),
            Some("Bearer tok-2".to_owned()),
        ]
    );
    // The fresh token is kept for what follows.
    assert_eq!(rt.block_on(store.tags()).unwrap(), ["1.0.0", "1.1.0"]);
    assert_eq!(issued.load(Ordering::SeqCst), 1, "no further exchange");
}

#[test]
fn a_second_401_after_a_fresh_token_is_final() {
    let issued = Arc::new(AtomicUsize::new(0));
    let tokens = token_service(issued.clone());
    let realm_url = format!("http://{}/token", tokens.host());
    let reg = FakeRegistry::start("127.0.0.1", move |_| challenge(&realm_url));
    let rt = rt();
    let store = store_at(
        &reg.host(),
        squizzle::store::registry::RegistryOptions {
            token: Some("tok-1".into()),
            ..with_password()
        },
    );
    let e = rt.block_on(store.tags()).unwrap_err();
    let text = e.to_string();
    assert!(
        text.contains("freshly issued") && !text.contains(PASSWORD),
        "{text}"
    );
    assert_eq!(exit_code(e), 4);
    assert_eq!(issued.load(Ordering::SeqCst), 1, "exactly one exchange");
    assert_eq!(reg.requests().len(), 2, "the request, and once more");
}

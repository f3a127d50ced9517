//! Properties of signed capability keys:
//!
//! - no input makes `Capability::from_bytes` panic, and whatever it accepts carries a valid
//!   chain equal to what was signed;
//! - altering any signed field anywhere in a delegated chain makes `check_chain` fail, unless
//!   the alteration changes nothing;
//! - `Capability::delegate` succeeds exactly when the new grant is within its parent's rights
//!   and lifetime.
//!
//! One quirk is documented rather than hidden: "never expires" is signed as `expires =
//! i64::MAX` (docs/PROTOCOL.md), so `None` and `Some(i64::MAX)` are the same signed grant and
//! count as "changes nothing" here.

use std::sync::OnceLock;

use phr::capability::{Capability, Grant, Right, Scope};
use phr::{KeyPair, PublicKey, Section};
use proptest::prelude::*;

/// Root → clinic (may delegate) → therapist: a valid two-level chain, made once.
struct Chain {
    root: KeyPair,
    clinic: KeyPair,
    parent: Capability,
    child: Capability,
}

fn chain() -> &'static Chain {
    static CHAIN: OnceLock<Chain> = OnceLock::new();
    CHAIN.get_or_init(|| {
        let root = KeyPair::generate();
        let clinic = KeyPair::generate();
        let therapist = KeyPair::generate();
        let parent = Capability::issue_root(
            &root,
            Grant {
                audience: clinic.public(),
                label: "Bright Steps Therapy".into(),
                scope: Scope::from([
                    (Section::Notes, Right::Write),
                    (Section::Goals, Right::Read),
                    (Section::Appointments, Right::Write),
                    (Section::Documents, Right::Read),
                ]),
                delegate: true,
                not_before: 1_000,
                // Never expires: signed as i64::MAX, the quirk the properties account for.
                expires: None,
            },
        )
        .unwrap();
        let child = Capability::delegate(
            &clinic,
            &parent,
            Grant {
                audience: therapist.public(),
                label: "J. Ames, SLP".into(),
                scope: Scope::from([(Section::Notes, Right::Write), (Section::Appointments, Right::Request)]),
                delegate: false,
                not_before: 2_000,
                expires: Some(900_000),
            },
        )
        .unwrap();
        Chain {
            root,
            clinic,
            parent,
            child,
        }
    })
}

/// The grant as its signatures see it: "never expires" has two spellings.
fn normalized(c: &Capability) -> Capability {
    let mut c = c.clone();
    if c.expires == Some(i64::MAX) {
        c.expires = None;
    }
    c.parent = c.parent.as_deref().map(|p| Box::new(normalized(p)));
    c
}

fn sections() -> impl Strategy<Value = Section> {
    prop::sample::select(Section::ALL.to_vec())
}

fn rights() -> impl Strategy<Value = Right> {
    prop::sample::select(vec![Right::Read, Right::Progress, Right::Request, Right::Write])
}

/// A right that exists for `section` (progress only for goals, request only for appointments).
fn fitting_right(section: Section) -> impl Strategy<Value = Right> {
    let mut choices = vec![Right::Read, Right::Write];
    match section {
        Section::Goals => choices.push(Right::Progress),
        Section::Appointments => choices.push(Right::Request),
        _ => {}
    }
    prop::sample::select(choices)
}

fn scopes() -> impl Strategy<Value = Scope> {
    prop::collection::vec(sections().prop_flat_map(|s| (Just(s), fitting_right(s))), 0..6)
        .prop_map(|v| v.into_iter().collect())
}

fn keys() -> impl Strategy<Value = PublicKey> {
    any::<[u8; 32]>().prop_map(|s| KeyPair::from_secret(s).public())
}

/// One change to one field of the chain: `deep` picks the parent instead of the child.
#[derive(Debug, Clone)]
enum Alteration {
    Scope {
        deep: bool,
        section: Section,
        right: Option<Right>,
    },
    Expires {
        deep: bool,
        to: Option<i64>,
    },
    NotBefore {
        deep: bool,
        to: i64,
    },
    Audience {
        deep: bool,
        to: PublicKey,
    },
    Issuer {
        deep: bool,
        to: PublicKey,
    },
    Record {
        deep: bool,
        to: PublicKey,
    },
    Label {
        deep: bool,
        to: String,
    },
    Delegate {
        deep: bool,
    },
    Id {
        deep: bool,
        to: [u8; 16],
    },
    Signature {
        deep: bool,
        byte: usize,
        xor: u8,
    },
    DropParent,
    /// Another genuine root grant to the same clinic, in place of the child's parent.
    SwapParent {
        expires: Option<i64>,
    },
}

fn alterations() -> impl Strategy<Value = Alteration> {
    let expiry = prop_oneof![
        Just(None),
        Just(Some(i64::MAX)),
        Just(Some(900_000)),
        Just(Some(1_000_000)),
        (0i64..2_000_000).prop_map(Some),
    ];
    prop_oneof![
        (any::<bool>(), sections(), prop::option::of(rights())).prop_map(|(deep, section, right)| Alteration::Scope {
            deep,
            section,
            right
        }),
        (any::<bool>(), expiry.clone()).prop_map(|(deep, to)| Alteration::Expires { deep, to }),
        (any::<bool>(), prop_oneof![Just(1_000i64), Just(2_000), 0i64..5_000])
            .prop_map(|(deep, to)| Alteration::NotBefore { deep, to }),
        (any::<bool>(), keys()).prop_map(|(deep, to)| Alteration::Audience { deep, to }),
        (any::<bool>(), keys()).prop_map(|(deep, to)| Alteration::Issuer { deep, to }),
        (any::<bool>(), keys()).prop_map(|(deep, to)| Alteration::Record { deep, to }),
        (
            any::<bool>(),
            prop_oneof![Just("J. Ames, SLP".to_string()), "[a-zA-Z ,.]{0,20}"]
        )
            .prop_map(|(deep, to)| Alteration::Label { deep, to }),
        any::<bool>().prop_map(|deep| Alteration::Delegate { deep }),
        (any::<bool>(), any::<[u8; 16]>()).prop_map(|(deep, to)| Alteration::Id { deep, to }),
        (any::<bool>(), 0usize..64, 1u8..=255).prop_map(|(deep, byte, xor)| Alteration::Signature { deep, byte, xor }),
        Just(Alteration::DropParent),
        expiry.prop_map(|expires| Alteration::SwapParent { expires }),
    ]
}

fn alter(c: &Chain, a: &Alteration) -> Capability {
    let mut child = c.child.clone();
    let mut parent = c.parent.clone();
    let pick = |deep: bool, child: &mut Capability, parent: &mut Capability, f: &mut dyn FnMut(&mut Capability)| {
        if deep { f(parent) } else { f(child) }
    };
    match a.clone() {
        Alteration::Scope { deep, section, right } => pick(deep, &mut child, &mut parent, &mut |x| match right {
            Some(r) => {
                x.scope.insert(section, r);
            }
            None => {
                x.scope.remove(&section);
            }
        }),
        Alteration::Expires { deep, to } => pick(deep, &mut child, &mut parent, &mut |x| x.expires = to),
        Alteration::NotBefore { deep, to } => pick(deep, &mut child, &mut parent, &mut |x| x.not_before = to),
        Alteration::Audience { deep, to } => pick(deep, &mut child, &mut parent, &mut |x| x.audience = to),
        Alteration::Issuer { deep, to } => pick(deep, &mut child, &mut parent, &mut |x| x.issuer = to),
        Alteration::Record { deep, to } => pick(deep, &mut child, &mut parent, &mut |x| x.record = to),
        Alteration::Label { deep, to } => pick(deep, &mut child, &mut parent, &mut |x| x.label = to.clone()),
        Alteration::Delegate { deep } => pick(deep, &mut child, &mut parent, &mut |x| x.delegate = !x.delegate),
        Alteration::Id { deep, to } => pick(deep, &mut child, &mut parent, &mut |x| x.id = to),
        Alteration::Signature { deep, byte, xor } => {
            pick(deep, &mut child, &mut parent, &mut |x| x.signature[byte] ^= xor)
        }
        Alteration::DropParent => {
            child.parent = None;
            return child;
        }
        Alteration::SwapParent { expires } => {
            parent = Capability::issue_root(
                &c.root,
                Grant {
                    audience: c.clinic.public(),
                    label: c.parent.label.clone(),
                    scope: c.parent.scope.clone(),
                    delegate: true,
                    not_before: c.parent.not_before,
                    expires,
                },
            )
            .unwrap();
        }
    }
    child.parent = Some(Box::new(parent));
    child
}

/// Byte-level damage to an encoded capability.
#[derive(Debug, Clone)]
enum Damage {
    Flip(usize, u8),
    Set(usize, u8),
    Insert(usize, u8),
    Remove(usize),
    Truncate(usize),
}

fn damages() -> impl Strategy<Value = Vec<Damage>> {
    let one = prop_oneof![
        (any::<usize>(), 1u8..=255).prop_map(|(i, x)| Damage::Flip(i, x)),
        (any::<usize>(), any::<u8>()).prop_map(|(i, x)| Damage::Set(i, x)),
        (any::<usize>(), any::<u8>()).prop_map(|(i, x)| Damage::Insert(i, x)),
        any::<usize>().prop_map(Damage::Remove),
        any::<usize>().prop_map(Damage::Truncate),
    ];
    prop::collection::vec(one, 1..5)
}

fn damage(mut bytes: Vec<u8>, how: &[Damage]) -> Vec<u8> {
    for d in how {
        let n = bytes.len().max(1);
        match *d {
            Damage::Flip(i, x) if !bytes.is_empty() => bytes[i % n] ^= x,
            Damage::Set(i, x) if !bytes.is_empty() => bytes[i % n] = x,
            Damage::Insert(i, x) => bytes.insert(i % (bytes.len() + 1), x),
            Damage::Remove(i) if !bytes.is_empty() => {
                bytes.remove(i % n);
            }
            Damage::Truncate(i) => bytes.truncate(i % (bytes.len() + 1)),
            _ => {}
        }
    }
    bytes
}

/// Whether `child` is within `parent`, by the rules of attenuation.
fn within(parent: &Grant, child: &Grant) -> bool {
    let rights = child
        .scope
        .iter()
        .all(|(s, r)| parent.scope.get(s).is_some_and(|p| p.covers(*r)));
    let starts = child.not_before >= parent.not_before;
    let ends = match (parent.expires, child.expires) {
        (None, _) => true,
        (Some(_), None) => false,
        (Some(p), Some(c)) => c <= p,
    };
    rights && starts && ends
}

type Terms = (Scope, i64, Option<i64>);

fn grants() -> impl Strategy<Value = Terms> {
    (scopes(), 0i64..100, prop::option::of(50i64..300))
}

/// A parent grant and a child grant near it: often within it, often just beyond it (a right
/// too strong, a section too many, starting too early, ending too late or never).
fn parent_and_child() -> impl Strategy<Value = (Terms, Terms)> {
    grants().prop_flat_map(|parent| {
        let (scope, from, until) = parent.clone();
        let entries: Vec<(Section, Right)> = scope.into_iter().collect();
        let rights = prop::sample::subsequence(entries.clone(), 0..=entries.len()).prop_flat_map(|kept| {
            kept.into_iter()
                .map(|(s, r)| prop_oneof![Just(r), fitting_right(s)].prop_map(move |r| (s, r)))
                .collect::<Vec<_>>()
        });
        let extra = prop::option::weighted(0.2, sections().prop_flat_map(|s| (Just(s), fitting_right(s))));
        let scope = (rights, extra).prop_map(|(v, extra)| v.into_iter().chain(extra).collect::<Scope>());
        let until = match until {
            None => prop::option::of(50i64..300).boxed(),
            Some(end) => prop::option::weighted(0.85, end - 100..end + 30).boxed(),
        };
        (Just(parent), (scope, from - 20..from + 60, until))
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn random_bytes_never_panic_the_decoder(bytes in prop::collection::vec(any::<u8>(), 0..600)) {
        if let Ok(c) = Capability::from_bytes(&bytes) {
            prop_assert!(c.check_chain().is_ok());
        }
    }

    #[test]
    fn random_text_never_panics_the_decoder(text in "(PHRCAP1)?[A-Z2-7a-z=]{0,300}") {
        if let Ok(c) = Capability::from_text(&text) {
            prop_assert!(c.check_chain().is_ok());
        }
    }

    #[test]
    fn damaged_encodings_are_refused_or_decode_to_the_signed_grant(how in damages()) {
        let original = &chain().child;
        let bytes = damage(original.to_bytes(), &how);
        match Capability::from_bytes(&bytes) {
            Err(_) => {}
            Ok(c) => {
                prop_assert!(c.check_chain().is_ok());
                prop_assert_eq!(normalized(&c), normalized(original));
            }
        }
    }

    #[test]
    fn an_altered_chain_never_verifies(a in alterations()) {
        let c = chain();
        let altered = alter(c, &a);
        let same = normalized(&altered) == normalized(&c.child);
        let verdict = altered.check_chain();
        if same {
            prop_assert!(verdict.is_ok(), "{:?} changed nothing, yet: {:?}", a, verdict);
        } else {
            prop_assert!(verdict.is_err(), "{:?} verified", a);
        }
    }

    #[test]
    fn delegation_succeeds_exactly_within_the_parents_rights_and_time(
        ((pscope, pfrom, puntil), (cscope, cfrom, cuntil)) in parent_and_child(),
    ) {
        let c = chain();
        let parent = Grant {
            audience: c.clinic.public(),
            label: "clinic".into(),
            scope: pscope,
            delegate: true,
            not_before: pfrom,
            expires: puntil,
        };
        let child = Grant {
            audience: KeyPair::generate().public(),
            label: "therapist".into(),
            scope: cscope,
            delegate: false,
            not_before: cfrom,
            expires: cuntil,
        };
        let expected = within(&parent, &child);
        let held = Capability::issue_root(&c.root, parent.clone()).unwrap();
        match Capability::delegate(&c.clinic, &held, child.clone()) {
            // `delegate` checks the chain it made before returning it.
            Ok(cap) => {
                prop_assert!(expected, "{:?} was delegated from {:?}", child, parent);
                prop_assert_eq!(cap.scope, child.scope);
            }
            Err(e) => prop_assert!(!expected, "{:?} refused within {:?}: {}", child, parent, e),
        }
    }
}

//! The `phr-node` subcommands that ask the running node over its HTTP API: invitations,
//! staff, patients, pushing FHIR resources, appointments, messages, forms and status.

use std::io::IsTerminal;

use anyhow::{Context, Result, bail};
use phr_engine::private_file;
use serde_json::{Value, json};

use crate::args::{AppointmentCmd, AppointmentRef, InviteArgs, PushArgs, PushKind, StaffCmd};
use crate::client::{Client, segment};
use crate::config::Config;
use crate::{lookup, shown};

/// `phr-node invite`: list, withdraw, or make an invitation (text, terminal QR, PNG).
pub(crate) fn invite(cfg: &Config, args: InviteArgs) -> Result<()> {
    let c = Client::connect(cfg)?;
    if args.list {
        return print_json(&c.get("/v1/invites")?);
    }
    if let Some(id) = args.withdraw {
        return withdraw_invite(&c, &id);
    }
    let res = c.post(
        "/v1/invites",
        &json!({"expires": args.expires, "uses": args.uses, "label": args.label}),
    )?;
    let ticket = res["ticket"].as_str().context("the node returned no ticket")?;
    println!(
        "Invitation to {} (valid until {}):",
        res["clinic"].as_str().unwrap_or("the clinic"),
        res["expires"].as_str().unwrap_or("?")
    );
    println!("{ticket}");
    if std::io::stdout().is_terminal() {
        println!("{}", phr_qr::terminal(ticket)?);
    }
    if let Some(p) = args.qr {
        // The invitation lets whoever holds it in: the file is private, an existing one kept.
        private_file::write(&p, &phr_qr::png(ticket)?, false)
            .with_context(|| format!("writing the ticket's QR code to {}", p.display()))?;
        println!("QR code written to {}", p.display());
    }
    println!("The patient runs: phr clinic connect {ticket}");
    Ok(())
}

/// `phr-node invite --withdraw ID`.
fn withdraw_invite(c: &Client, id: &str) -> Result<()> {
    if id.is_empty() || !id.chars().all(|c| c.is_ascii_hexdigit()) {
        bail!("`{id}` is not an invitation id; see `phr-node invite --list`");
    }
    let res = c.delete(&format!("/v1/invites/{id}"))?;
    let label = res["label"]
        .as_str()
        .map(|l| format!(" ({})", shown(l)))
        .unwrap_or_default();
    println!("Withdrew invitation {id}{label}: nobody can connect with it any more.");
    Ok(())
}

/// `phr-node staff add|list|remove`.
pub(crate) fn staff(cfg: &Config, cmd: StaffCmd) -> Result<()> {
    let c = Client::connect(cfg)?;
    match cmd {
        StaffCmd::Add { name, role, sections } => {
            let m = c.post("/v1/staff", &json!({"name": name, "role": role, "sections": sections}))?;
            println!(
                "Added {} ({}), key {}",
                shown(m["name"].as_str().unwrap_or("")),
                shown(m["role"].as_str().unwrap_or("")),
                m["key"].as_str().unwrap_or("")
            );
            Ok(())
        }
        StaffCmd::List { json } => {
            let all = c.get("/v1/staff")?;
            if json {
                return print_json(&all);
            }
            for m in all.as_array().into_iter().flatten() {
                let gone = m["removed"]
                    .as_str()
                    .map(|r| format!("  removed {r}"))
                    .unwrap_or_default();
                println!(
                    "{:<28} {:<14} {}{gone}",
                    shown(m["name"].as_str().unwrap_or("")),
                    shown(m["role"].as_str().unwrap_or("")),
                    m["key"].as_str().unwrap_or("")
                );
            }
            Ok(())
        }
        StaffCmd::Remove { who } => {
            let key = lookup::staff(&c, &who)?;
            let m = c.delete(&format!("/v1/staff/{}", segment(&key)))?;
            println!(
                "Removed {}; their access to {} record(s) was revoked (what they wrote stays).",
                shown(m["name"].as_str().unwrap_or(&who)),
                m["records_revoked"]
            );
            Ok(())
        }
    }
}

/// `phr-node patients`.
pub(crate) fn patients(cfg: &Config, json: bool) -> Result<()> {
    let all = Client::connect(cfg)?.get("/v1/patients")?;
    if json {
        return print_json(&all);
    }
    for p in all.as_array().into_iter().flatten() {
        println!(
            "{}  {:<30} connected {}",
            p["id"].as_str().unwrap_or(""),
            shown(p["name"].as_str().unwrap_or("(profile not synced yet)")),
            p["connected"].as_str().unwrap_or("?")
        );
    }
    Ok(())
}

/// `phr-node push KIND --patient P --file F`: one FHIR resource into a patient's record.
pub(crate) fn push(cfg: &Config, args: PushArgs) -> Result<()> {
    let PushArgs {
        kind,
        patient,
        file,
        clinician,
    } = args;
    let text = if file.as_os_str() == "-" {
        std::io::read_to_string(std::io::stdin())?
    } else {
        std::fs::read_to_string(&file).with_context(|| format!("reading {}", file.display()))?
    };
    let res: Value = serde_json::from_str(&text).with_context(|| format!("{} is not JSON", file.display()))?;
    let route = match kind {
        PushKind::Note => "notes",
        PushKind::Lab => "labs",
        PushKind::Appointment => "appointments",
        PushKind::Form => "forms",
        PushKind::Message => "messages",
    };
    let c = Client::connect(cfg)?;
    let patient = lookup::patient(&c, &patient)?;
    let q = match clinician {
        Some(who) => format!("?clinician={}", segment(&lookup::staff(&c, &who)?)),
        None => String::new(),
    };
    let out = c.post(&format!("/v1/patients/{}/{route}{q}", segment(&patient)), &res)?;
    println!(
        "{} {} {} in {} (by {})",
        out["outcome"].as_str().unwrap_or(""),
        route.trim_end_matches('s'),
        out["id"].as_str().unwrap_or(""),
        out["patient"].as_str().unwrap_or(""),
        out["author"].as_str().unwrap_or("")
    );
    Ok(())
}

/// `phr-node appointments list|confirm|cancel`.
pub(crate) fn appointments(cfg: &Config, cmd: AppointmentCmd) -> Result<()> {
    let c = Client::connect(cfg)?;
    match cmd {
        AppointmentCmd::List { patient, status } => {
            let q = status.map(|s| format!("?status={}", segment(&s))).unwrap_or_default();
            let patient = lookup::patient(&c, &patient)?;
            print_json(&c.get(&format!("/v1/patients/{}/appointments{q}", segment(&patient)))?)
        }
        AppointmentCmd::Confirm(r) => appointment_action(&c, r, "confirm"),
        AppointmentCmd::Cancel(r) => appointment_action(&c, r, "cancel"),
    }
}

/// `phr-node messages --patient P`.
pub(crate) fn messages(cfg: &Config, patient: &str) -> Result<()> {
    let c = Client::connect(cfg)?;
    let patient = lookup::patient(&c, patient)?;
    print_json(&c.get(&format!("/v1/patients/{}/messages", segment(&patient)))?)
}

/// `phr-node forms --patient P [--completed]`.
pub(crate) fn forms(cfg: &Config, patient: &str, completed: bool) -> Result<()> {
    let q = if completed { "?status=completed" } else { "" };
    let c = Client::connect(cfg)?;
    let patient = lookup::patient(&c, patient)?;
    print_json(&c.get(&format!("/v1/patients/{}/forms{q}", segment(&patient)))?)
}

/// `phr-node status`: health and the metrics' values.
pub(crate) fn status(cfg: &Config) -> Result<()> {
    let c = Client::connect(cfg)?;
    let health = c.get("/health")?;
    println!(
        "clinic {} — {}",
        health["clinic"].as_str().unwrap_or("?"),
        health["status"].as_str().unwrap_or("?")
    );
    for line in c.get_text("/metrics")?.lines().filter(|l| !l.starts_with('#')) {
        println!("  {line}");
    }
    Ok(())
}

fn appointment_action(c: &Client, r: AppointmentRef, action: &str) -> Result<()> {
    let patient = lookup::patient(c, &r.patient)?;
    let q = match &r.clinician {
        Some(who) => format!("?clinician={}", segment(&lookup::staff(c, who)?)),
        None => String::new(),
    };
    let out = c.post(
        &format!(
            "/v1/patients/{}/appointments/{}/{action}{q}",
            segment(&patient),
            segment(&r.id)
        ),
        &json!({}),
    )?;
    let done = if action == "cancel" { "cancelled" } else { "confirmed" };
    println!(
        "appointment {} {done} (by {})",
        out["id"].as_str().unwrap_or(""),
        out["author"].as_str().unwrap_or("")
    );
    Ok(())
}

fn print_json(v: &Value) -> Result<()> {
    println!("{}", serde_json::to_string_pretty(v)?);
    Ok(())
}

//! The therapy parts of a report: current goals (each with its progress chart), session counts
//! and the therapy notes of the period.

use phr_model::entry::Goal;
use phr_model::summary::{self, DisciplineNotes, NotePart, SessionCount, Summary};

use crate::chart::chart;
use crate::model::{Block, Style, Table, labelled, para};
use crate::text::{num, with_unit};

/// Goals, sessions and notes, those the audience gets, in print order.
pub(super) fn parts(blocks: &mut Vec<Block>, s: &Summary, period: &str) {
    if let Some(goals) = &s.goals {
        blocks.push(Block::Heading("Current goals".into()));
        if goals.is_empty() {
            blocks.push(para("No current goals recorded.", Style::Muted));
        }
        for g in goals {
            blocks.push(goal_block(&g.goal));
        }
    }
    if let Some(sessions) = &s.sessions {
        blocks.push(Block::Heading(format!("Therapy sessions, {period}")));
        if sessions.is_empty() {
            blocks.push(para("No sessions recorded in this period.", Style::Muted));
        } else {
            sessions_part(blocks, sessions);
        }
    }
    if let Some(groups) = &s.notes {
        blocks.push(Block::Heading(format!("Therapy notes, {period}")));
        if groups.is_empty() {
            blocks.push(para("No therapy notes in this period.", Style::Muted));
        }
        for g in groups {
            notes_part(blocks, g);
        }
    }
}

/// Sessions and minutes per discipline with a total row, and a remark on sessions of no length.
fn sessions_part(blocks: &mut Vec<Block>, sessions: &[SessionCount]) {
    let mut rows: Vec<Vec<String>> = sessions
        .iter()
        .map(|c| vec![c.title.clone(), c.sessions.to_string(), num(c.minutes)])
        .collect();
    let total: usize = sessions.iter().map(|c| c.sessions).sum();
    let minutes: f64 = sessions.iter().map(|c| c.minutes).sum();
    rows.push(vec!["Total".into(), total.to_string(), num(minutes)]);
    blocks.push(Block::Table(Table {
        head: ["Discipline", "Sessions", "Minutes"].map(String::from).into(),
        widths: vec![0.5, 0.25, 0.25],
        rows,
    }));
    let unknown: usize = sessions.iter().map(|c| c.without_minutes).sum();
    if unknown > 0 {
        blocks.push(para(
            format!("{unknown} session(s) give no length and add no minutes."),
            Style::Muted,
        ));
    }
}

/// One discipline's notes under a subheading, each note kept on one page.
fn notes_part(blocks: &mut Vec<Block>, g: &DisciplineNotes) {
    let count = match g.notes.len() {
        1 => "1 note".to_string(),
        n => format!("{n} notes"),
    };
    blocks.push(Block::Subheading(format!("{} ({count})", g.title)));
    for n in &g.notes {
        blocks.push(Block::Keep {
            class: "note",
            blocks: note(n),
        });
    }
}

/// A note: date, clinician and length, its SOAP parts, amendments, and who recorded it.
fn note(n: &NotePart) -> Vec<Block> {
    let mut head = format!("{} · {}", n.date, n.clinician);
    if let Some(m) = n.minutes {
        head.push_str(&format!(" · {} min", num(m)));
    }
    let mut note = vec![para(head, Style::Strong)];
    for part in &n.soap {
        note.push(labelled(part.label, part.text.clone()));
    }
    for a in &n.amendments {
        let mut label = format!("Amended {}", a.at.get(..10).unwrap_or(&a.at));
        if let Some(by) = &a.by {
            label.push_str(&format!(" by {by}"));
        }
        let mut text = a.text.clone();
        if let Some(r) = &a.reason {
            text.push_str(&format!(" (reason: {r})"));
        }
        note.push(Block::Para {
            label: Some(label),
            text,
            style: Style::Amendment,
        });
    }
    if let Some(by) = &n.recorded_by {
        note.push(para(format!("Recorded by {by}"), Style::Muted));
    }
    note
}

/// A goal: its facts, its progress chart and latest measurement, and its milestones.
fn goal_block(g: &Goal) -> Block {
    let mut blocks = vec![Block::Subheading(g.goal.clone())];
    let facts = goal_facts(g);
    if !facts.is_empty() {
        blocks.push(para(facts.join(" · "), Style::Muted));
    }
    match (chart(g), g.progress.first(), g.progress.last()) {
        (Some(c), Some(first), Some(last)) => {
            blocks.push(Block::Chart(c));
            let mut text = format!("Latest: {} on {}", with_unit(last.value, &g.unit), last.date);
            if g.progress.len() > 1 {
                text.push_str(&format!(
                    ", from {} on {} ({} measurements)",
                    with_unit(first.value, &g.unit),
                    first.date,
                    g.progress.len()
                ));
            }
            if let Some(n) = &last.note {
                text.push_str(&format!(". Note: {n}"));
            }
            blocks.push(para(text, Style::Body));
        }
        _ => blocks.push(para("No progress measured yet.", Style::Muted)),
    }
    if !g.milestones.is_empty() {
        blocks.push(milestones(g));
    }
    Block::Keep { class: "goal", blocks }
}

/// Discipline, status other than active, baseline and target.
fn goal_facts(g: &Goal) -> Vec<String> {
    let mut facts = Vec::new();
    if let Some(d) = &g.discipline {
        facts.push(summary::discipline_title(d));
    }
    if g.status != "active" {
        facts.push(format!("status: {}", g.status));
    }
    if let Some(b) = g.baseline {
        facts.push(format!("baseline {}", with_unit(b, &g.unit)));
    }
    match (g.target, g.target_date) {
        (Some(t), Some(d)) => facts.push(format!("target {} by {d}", with_unit(t, &g.unit))),
        (Some(t), None) => facts.push(format!("target {}", with_unit(t, &g.unit))),
        (None, Some(d)) => facts.push(format!("target date {d}")),
        (None, None) => {}
    }
    facts
}

/// The goal's milestones, one a line, each with its due date and whether it is reached.
fn milestones(g: &Goal) -> Block {
    let list: Vec<String> = g
        .milestones
        .iter()
        .map(|m| {
            let mut s = m.text.clone();
            if let Some(d) = m.due {
                s.push_str(&format!(" (due {d})"));
            }
            s.push_str(if m.done { ": reached" } else { ": open" });
            s
        })
        .collect();
    Block::Para {
        label: Some("Milestones".into()),
        text: list.join("\n"),
        style: Style::Body,
    }
}

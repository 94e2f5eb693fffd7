//! A satisfaction survey to go with a generated event log: some users answer an NPS
//! question (0-10) after their last visit, and their score depends on their persona
//! and on what they went through — searches that led nowhere, refunds, the ratings
//! they gave — so a survey analysis finds real differences.
//!
//! [`generate_survey`] reads the event CSV [`crate::generate`] wrote with the same
//! [`SynthParams`] (users in id order) and writes `user_id, answered_at, score,
//! comment, channel`; the output is a pure function of the parameters.

use std::io::{Read, Write};

use chrono::{NaiveDateTime, TimeDelta};
use rand::{Rng, SeedableRng};
use rand_xoshiro::Xoshiro256PlusPlus;
use userlens_model::{columns, event_types};

use crate::{Error, PERSONAS, Plan, Result, SynthParams, splitmix64};

const TIME_LAYOUT: &str = "%Y-%m-%d %H:%M:%S";
/// Header of the survey CSV.
pub const SURVEY_COLUMNS: [&str; 5] = [
    columns::USER_ID,
    columns::survey::ANSWERED_AT,
    columns::survey::SCORE,
    columns::survey::COMMENT,
    columns::survey::CHANNEL,
];

/// What [`generate_survey`] wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SurveySummary {
    /// Users read from the events.
    pub users: usize,
    /// Answers written.
    pub answers: usize,
}

/// A user's experience, from their events.
#[derive(Debug, Default)]
struct Experience {
    first: String,
    last: String,
    session: String,
    searched: bool,
    converted: bool,
    search_sessions: u32,
    failed_searches: u32,
    refunds: u32,
    rating_sum: f64,
    ratings: u32,
}

impl Experience {
    fn end_session(&mut self) {
        if self.searched {
            self.search_sessions += 1;
            self.failed_searches += u32::from(!self.converted);
        }
        self.searched = false;
        self.converted = false;
    }
}

/// Mean score of each persona before experience, in [`PERSONAS`] order by name.
fn base_score(persona: &str) -> (f64, f64) {
    // (mean score, response rate)
    match persona {
        "bargain browser" => (7.8, 0.3),
        "loyal big spender" => (9.4, 0.4),
        "night searcher" => (8.0, 0.3),
        "weekend hobbyist" => (9.0, 0.35),
        "lapsed one-timer" => (6.0, 0.2),
        _ => (8.0, 0.3),
    }
}

const COMMENTS: [&[&str]; 3] = [
    &[
        "search never finds what I want",
        "the refund took weeks",
        "too expensive for what it is",
    ],
    &["fine", "ok, but delivery could be faster"],
    &["love it", "great selection, quick delivery"],
];

/// Writes the survey of the events `events` (as [`crate::generate`] wrote them with
/// `params`) to `out`.
pub fn generate_survey<R: Read, W: Write>(
    params: &SynthParams,
    events: R,
    out: W,
) -> Result<SurveySummary> {
    params.check()?;
    let plan = Plan::new(params);
    let mut reader = csv::Reader::from_reader(events);
    let input = |line: u64, reason: String| Error::SurveyEvents { line, reason };
    let header = reader
        .headers()
        .map_err(|e| input(1, e.to_string()))?
        .clone();
    let find = |name: &str| {
        header
            .iter()
            .position(|h| h == name)
            .ok_or_else(|| input(1, format!("no `{name}` column")))
    };
    let [user, time, kind, session, amount, rating] = [
        columns::USER_ID,
        columns::EVENT_TIME,
        columns::EVENT_TYPE,
        columns::SESSION_ID,
        columns::AMOUNT,
        columns::RATING,
    ]
    .map(find);
    let (user, time, kind, session, amount, rating) =
        (user?, time?, kind?, session?, amount?, rating?);
    let mut writer = csv::Writer::from_writer(out);
    let write_err = |user: &str, source| Error::Survey {
        user: user.to_string(),
        source,
    };
    writer
        .write_record(SURVEY_COLUMNS)
        .map_err(|e| write_err("", e))?;
    let mut summary = SurveySummary {
        users: 0,
        answers: 0,
    };
    let mut current: Option<String> = None;
    let mut exp = Experience::default();
    let mut record = csv::StringRecord::new();
    loop {
        let more = reader
            .read_record(&mut record)
            .map_err(|e| input(reader.position().line(), e.to_string()))?;
        let id = more.then(|| record.get(user).unwrap_or_default());
        if current.as_deref() != id
            && let Some(done) = current.take()
        {
            exp.end_session();
            if answer(&plan, params, summary.users, &done, &exp, &mut writer)? {
                summary.answers += 1;
            }
            summary.users += 1;
            exp = Experience::default();
        }
        let Some(id) = id else { break };
        let field = |i: usize| record.get(i).unwrap_or_default();
        if current.is_none() {
            current = Some(id.to_string());
            exp.first = field(time).to_string();
        }
        exp.last.clear();
        exp.last.push_str(field(time));
        if field(session) != exp.session {
            exp.end_session();
            exp.session = field(session).to_string();
        }
        match field(kind) {
            event_types::SEARCH => exp.searched = true,
            event_types::ADD_TO_CART => exp.converted = true,
            event_types::PURCHASE => {
                exp.converted = true;
                exp.refunds += u32::from(field(amount).parse::<f64>().is_ok_and(|a| a < 0.0));
            }
            _ => {}
        }
        if let Ok(r) = field(rating).parse::<f64>() {
            exp.rating_sum += r;
            exp.ratings += 1;
        }
    }
    writer.flush().map_err(|e| write_err("", e.into()))?;
    Ok(summary)
}

/// Writes user `index`'s answer if they answer; whether they did.
fn answer<W: Write>(
    plan: &Plan,
    params: &SynthParams,
    index: usize,
    id: &str,
    exp: &Experience,
    writer: &mut csv::Writer<W>,
) -> Result<bool> {
    if plan.user_id(index) != id {
        return Err(Error::SurveyEvents {
            line: 0,
            reason: format!(
                "user `{id}` is not user {} of the generator with these parameters",
                index + 1
            ),
        });
    }
    let persona = PERSONAS[plan.persona(index)].name;
    let (mean, rate) = base_score(persona);
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(splitmix64(
        params.seed ^ 0x5375_7276_6579 ^ splitmix64(index as u64),
    ));
    if rng.r#gen::<f64>() >= rate {
        return Ok(false);
    }
    let failed_share = if exp.search_sessions > 0 {
        f64::from(exp.failed_searches) / f64::from(exp.search_sessions)
    } else {
        0.0
    };
    let mut score = mean - 2.5 * failed_share - 2.0 * f64::from(exp.refunds.min(2));
    if exp.ratings > 0 {
        score += exp.rating_sum / f64::from(exp.ratings) - 3.0;
    }
    // The sum of three uniforms: bell-shaped noise without platform-dependent maths.
    let noise: f64 = (0..3).map(|_| rng.r#gen::<f64>()).sum::<f64>() - 1.5;
    let score = (score + 2.0 * noise).round().clamp(0.0, 10.0) as u32;
    let parse = |t: &str| NaiveDateTime::parse_from_str(t, TIME_LAYOUT).ok();
    let (Some(first), Some(last)) = (parse(&exp.first), parse(&exp.last)) else {
        return Err(Error::SurveyEvents {
            line: 0,
            reason: format!("user `{id}`: event times are not `{TIME_LAYOUT}`"),
        });
    };
    let end = params.start.and_hms_opt(0, 0, 0).unwrap_or(first)
        + TimeDelta::days(i64::from(params.days))
        - TimeDelta::seconds(1);
    let delay = TimeDelta::seconds(i64::from(rng.gen_range(3600..14 * 86_400u32)));
    // After the last visit, within the period: a late leaver answers before its end.
    let answered = if last + delay <= end {
        last + delay
    } else {
        let room = (end - last).num_seconds().max(0);
        last + TimeDelta::seconds((rng.r#gen::<f64>() * room as f64) as i64)
    }
    .max(first);
    let comment = if rng.r#gen::<f64>() < 0.3 {
        let tone = match score {
            0..=6 => 0,
            7..=8 => 1,
            _ => 2,
        };
        let options = COMMENTS[tone];
        options[rng.gen_range(0..options.len() as u32) as usize]
    } else {
        ""
    };
    let channel = if rng.r#gen::<f64>() < 0.6 {
        "email"
    } else {
        "app"
    };
    let answered = answered.format(TIME_LAYOUT).to_string();
    writer
        .write_record([id, &answered, &score.to_string(), comment, channel])
        .map_err(|source| Error::Survey {
            user: id.to_string(),
            source,
        })?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn survey(params: &SynthParams) -> (String, SurveySummary) {
        let mut events = Vec::new();
        crate::generate(params, &mut events, None::<Vec<u8>>).unwrap();
        let mut out = Vec::new();
        let summary = generate_survey(params, events.as_slice(), &mut out).unwrap();
        (String::from_utf8(out).unwrap(), summary)
    }

    #[test]
    fn scores_differ_by_persona_and_bytes_repeat() {
        let params = SynthParams {
            users: 1500,
            ..SynthParams::default()
        };
        let (text, summary) = survey(&params);
        assert_eq!(summary.users, 1500);
        assert!(text.starts_with("user_id,answered_at,score,comment,channel\n"));
        assert_eq!(text.lines().count(), summary.answers + 1);
        assert!((300..700).contains(&summary.answers), "{}", summary.answers);
        let plan = Plan::new(&params);
        let mut by_persona = vec![(0.0, 0u32); PERSONAS.len()];
        for line in text.lines().skip(1) {
            let fields: Vec<&str> = line.split(',').collect();
            let index: usize = fields[0][1..].parse::<usize>().unwrap() - 1;
            let score: f64 = fields[2].parse().unwrap();
            assert!((0.0..=10.0).contains(&score));
            let p = plan.persona(index);
            by_persona[p].0 += score;
            by_persona[p].1 += 1;
        }
        let mean = |name: &str| {
            let i = PERSONAS.iter().position(|p| p.name == name).unwrap();
            by_persona[i].0 / f64::from(by_persona[i].1)
        };
        assert!(mean("loyal big spender") > mean("lapsed one-timer") + 2.0);
        assert_eq!(survey(&params).0, text);
    }

    #[test]
    fn events_of_other_parameters_are_refused() {
        let params = SynthParams {
            users: 30,
            ..SynthParams::default()
        };
        let mut events = Vec::new();
        crate::generate(&params, &mut events, None::<Vec<u8>>).unwrap();
        let other = SynthParams {
            users: 10_000_000,
            ..params.clone()
        };
        let err = generate_survey(&other, events.as_slice(), Vec::new()).unwrap_err();
        assert!(
            err.to_string().contains("is not user 1 of the generator"),
            "{err}"
        );
    }
}

//! The simulator's data and the API's behaviour over it: filters, page-number pagination,
//! DRF-style errors. Pure functions of the state and the request; no I/O.

use std::collections::HashMap;

use serde_json::{Value, json};
use time::OffsetDateTime;

use crate::domain::time::parse_api_time;
use crate::domain::{ProjectId, Row, Status};

/// A job as the simulator holds it.
#[derive(Clone, Debug)]
pub struct SimJob {
    pub id: String,
    pub name: String,
    pub status: Status,
    pub project: Option<ProjectId>,
    pub creation_date: OffsetDateTime,
    pub completion_date: Option<OffsetDateTime>,
    pub step: u32,
    pub message: Option<String>,
    pub rows: Vec<Row>,
    /// When set, the output is this many generated rows instead of `rows`, made as they
    /// are sent (for size and memory tests).
    pub generated_rows: Option<usize>,
    /// Listings show the job only from this moment (the simulator's clock): some APIs
    /// index new records a little after creating them.
    pub visible_from: Option<OffsetDateTime>,
}

/// The order of the job listing. The real API's is undocumented, so clients must not
/// depend on it; tests choose.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Order {
    #[default]
    NewestFirst,
    OldestFirst,
}

/// An HTTP answer before it is written: status, JSON body, extra headers.
#[derive(Clone, Debug)]
pub struct Answer {
    pub status: u16,
    pub body: Value,
    pub headers: Vec<(&'static str, String)>,
}

impl Answer {
    fn ok(body: Value) -> Self {
        Self {
            status: 200,
            body,
            headers: Vec::new(),
        }
    }

    fn detail(status: u16, detail: &str) -> Self {
        Self {
            status,
            body: json!({ "detail": detail }),
            headers: Vec::new(),
        }
    }
}

#[derive(Debug)]
pub struct SimState {
    pub jobs: Vec<SimJob>,
    pub index: HashMap<String, usize>,
    pub order: Order,
    pub default_page_size: usize,
    pub max_page_size: usize,
    /// When set, `next` links point at this origin instead of ours (to test the guard).
    pub next_origin: Option<String>,
    /// Whether list rows carry `project`. The article's example has none; ours sends it
    /// by default, when the job has one.
    pub list_project: bool,
    /// Added to the real clock to make the simulator's: its `Date` header, the dates of jobs
    /// that are not given one, completion dates, and when late jobs become visible.
    pub clock_offset: time::Duration,
}

impl SimState {
    pub fn new() -> Self {
        Self {
            jobs: Vec::new(),
            index: HashMap::new(),
            order: Order::default(),
            default_page_size: 25,
            max_page_size: 1000,
            next_origin: None,
            list_project: true,
            clock_offset: time::Duration::ZERO,
        }
    }

    /// The simulator's clock.
    pub fn now(&self) -> OffsetDateTime {
        OffsetDateTime::now_utc() + self.clock_offset
    }

    pub fn insert(&mut self, job: SimJob) {
        match self.index.get(&job.id) {
            Some(&at) => self.jobs[at] = job,
            None => {
                self.index.insert(job.id.clone(), self.jobs.len());
                self.jobs.push(job);
            }
        }
    }

    pub fn job_mut(&mut self, id: &str) -> Option<&mut SimJob> {
        let at = *self.index.get(id)?;
        self.jobs.get_mut(at)
    }

    pub fn job(&self, id: &str) -> Option<&SimJob> {
        self.index.get(id).map(|&at| &self.jobs[at])
    }

    /// Deletes a job; false if there was none.
    pub fn remove(&mut self, id: &str) -> bool {
        let Some(at) = self.index.remove(id) else {
            return false;
        };
        self.jobs.swap_remove(at);
        if let Some(moved) = self.jobs.get(at) {
            self.index.insert(moved.id.clone(), at);
        }
        true
    }

    /// Whether listings show `job` now.
    pub fn visible(&self, job: &SimJob) -> bool {
        job.visible_from.is_none_or(|from| from <= self.now())
    }

    /// `GET jobs/`, with `origin` (e.g. `http://127.0.0.1:4000`) for the page links.
    pub fn list(&self, origin: &str, path: &str, query: &[(String, String)]) -> Answer {
        let filter = match ListFilter::parse(query) {
            Ok(filter) => filter,
            Err(answer) => return answer,
        };
        let page_size = match param(query, "page_size").map(str::parse::<usize>) {
            None => self.default_page_size,
            Some(Ok(size)) if size > 0 => size.min(self.max_page_size),
            Some(_) => self.default_page_size,
        };
        let page = match param(query, "page").map(str::parse::<usize>) {
            None => 1,
            Some(Ok(page)) if page > 0 => page,
            Some(_) => return Answer::detail(404, "Invalid page."),
        };
        let mut matching: Vec<&SimJob> = self
            .jobs
            .iter()
            .filter(|job| self.visible(job) && filter.matches(job))
            .collect();
        matching.sort_by(|a, b| {
            let order = a.creation_date.cmp(&b.creation_date).then(a.id.cmp(&b.id));
            match self.order {
                Order::OldestFirst => order,
                Order::NewestFirst => order.reverse(),
            }
        });
        let count = matching.len();
        let pages = count.div_ceil(page_size).max(1);
        if page > pages {
            return Answer::detail(404, "Invalid page.");
        }
        let results: Vec<Value> = matching
            .iter()
            .skip((page - 1) * page_size)
            .take(page_size)
            .map(|job| list_row(job, self.list_project))
            .collect();
        let link_origin = self.next_origin.as_deref().unwrap_or(origin);
        let link = |target: usize| page_link(link_origin, path, query, target);
        Answer::ok(json!({
            "count": count,
            "next": if page < pages { link(page + 1) } else { Value::Null },
            "previous": if page > 1 { link(page - 1) } else { Value::Null },
            "results": results,
        }))
    }

    /// `GET jobs/{id}/`: only `status`, `step` and, on error, `message`, as the article shows.
    pub fn detail(&self, id: &str) -> Answer {
        let Some(job) = self.index.get(id).map(|&at| &self.jobs[at]) else {
            return Answer::detail(404, "Not found.");
        };
        let mut body = json!({ "status": job.status.as_str(), "step": { "id": job.step } });
        if job.status == Status::Error {
            body["message"] = json!(job.message.clone().unwrap_or_default());
        }
        Answer::ok(body)
    }

    /// `GET jobs/{id}/data/{format}/`: what to stream for a done job's rows.
    pub fn data(&self, id: &str) -> Result<RowSource, Answer> {
        let Some(job) = self.index.get(id).map(|&at| &self.jobs[at]) else {
            return Err(Answer::detail(404, "Not found."));
        };
        if job.status != Status::Done {
            // Undocumented for the real API; a plain 400 is the least surprising stand-in.
            return Err(Answer::detail(400, "The job is not done."));
        }
        Ok(match job.generated_rows {
            Some(count) => RowSource::Generated(count),
            None => RowSource::Rows(job.rows.clone()),
        })
    }
}

/// The rows a data answer streams.
#[derive(Clone, Debug)]
pub enum RowSource {
    Rows(Vec<Row>),
    Generated(usize),
}

impl RowSource {
    pub fn len(&self) -> usize {
        match self {
            RowSource::Rows(rows) => rows.len(),
            RowSource::Generated(count) => *count,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Row `index` as JSON text.
    pub fn row(&self, index: usize) -> String {
        match self {
            RowSource::Rows(rows) => Value::Object(rows[index].clone()).to_string(),
            RowSource::Generated(_) => Value::Object(generated_row(index)).to_string(),
        }
    }
}

/// A product row; as the API does, columns that would be empty are left out (no colour on
/// every seventh row), and a rare column appears late (size, on every thousandth).
pub fn generated_row(index: usize) -> Row {
    let mut row = Row::new();
    row.insert("sku".into(), json!(format!("SKU-{index:07}")));
    row.insert("name".into(), json!(format!("Product {index}")));
    row.insert(
        "price".into(),
        json!(format!("{}.{:02}", index % 500, index % 100)),
    );
    if !index.is_multiple_of(7) {
        row.insert("color".into(), json!(["red", "green", "blue"][index % 3]));
    }
    if index % 1000 == 999 {
        row.insert("size".into(), json!("L"));
    }
    row
}

fn bad_request(field: &str, problem: &str) -> Answer {
    Answer {
        status: 400,
        body: json!({ field: [problem] }),
        headers: Vec::new(),
    }
}

fn list_row(job: &SimJob, with_project: bool) -> Value {
    let mut row = json!({
        "id": job.id,
        "name": job.name,
        "status": job.status.as_str(),
        "creation_date": sim_time(job.creation_date),
        "completion_date": job.completion_date.map(sim_time),
    });
    // The article's list example has no project field; ours sends it only when set.
    if let Some(project) = job.project.filter(|_| with_project) {
        row["project"] = json!(project);
    }
    row
}

/// Dates as the API writes them: microseconds with trailing zeros dropped, so the number
/// of fraction digits varies from 0 to 6 (`.12Z`, `.109159Z`).
pub fn sim_time(at: OffsetDateTime) -> String {
    let base = at
        .format(time::macros::format_description!(
            "[year]-[month]-[day]T[hour]:[minute]:[second]"
        ))
        .unwrap_or_default();
    let micros = at.microsecond();
    if micros == 0 {
        return format!("{base}Z");
    }
    let fraction = format!("{micros:06}");
    format!("{base}.{}Z", fraction.trim_end_matches('0'))
}

/// A query parameter's value.
fn param<'q>(query: &'q [(String, String)], name: &str) -> Option<&'q str> {
    query
        .iter()
        .find(|(key, _)| key == name)
        .map(|(_, value)| value.as_str())
}

/// The link to page `target` of a listing: the same query with another `page`.
fn page_link(origin: &str, path: &str, query: &[(String, String)], target: usize) -> Value {
    let mut pairs: Vec<(String, String)> = query
        .iter()
        .filter(|(key, _)| key != "page")
        .cloned()
        .collect();
    if target > 1 {
        pairs.push(("page".into(), target.to_string()));
    }
    let encoded = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(pairs)
        .finish();
    let separator = if encoded.is_empty() { "" } else { "?" };
    Value::String(format!("{origin}{path}{separator}{encoded}"))
}

/// A listing's filters, as the API reads them (400 with the field's complaint if not).
struct ListFilter {
    status: Option<Status>,
    project: Option<ProjectId>,
    after: Option<OffsetDateTime>,
    before: Option<OffsetDateTime>,
}

impl ListFilter {
    fn parse(query: &[(String, String)]) -> Result<ListFilter, Answer> {
        let status = match param(query, "status") {
            None | Some("") => None,
            Some(text) => match Status::parse(text) {
                Status::Other(_) => {
                    return Err(bad_request(
                        "status",
                        &format!(
                            "Select a valid choice. {text} is not one of the available choices."
                        ),
                    ));
                }
                status => Some(status),
            },
        };
        let project = match param(query, "project") {
            None | Some("") => None,
            Some(text) => match text.parse::<ProjectId>() {
                Ok(id) => Some(id),
                Err(_) => return Err(bad_request("project", "Enter a number.")),
            },
        };
        let mut bounds = [None, None];
        for (slot, name) in bounds.iter_mut().zip(["created_after", "created_before"]) {
            if let Some(text) = param(query, name).filter(|text| !text.is_empty()) {
                match parse_api_time(text) {
                    Some(at) => *slot = Some(at),
                    None => return Err(bad_request(name, "Enter a valid date/time.")),
                }
            }
        }
        let [after, before] = bounds;
        Ok(ListFilter {
            status,
            project,
            after,
            before,
        })
    }

    fn matches(&self, job: &SimJob) -> bool {
        self.status.as_ref().is_none_or(|status| &job.status == status)
            && self.project.is_none_or(|project| job.project == Some(project))
            // The API's "after" and "before" are strict.
            && self.after.is_none_or(|after| job.creation_date > after)
            && self.before.is_none_or(|before| job.creation_date < before)
    }
}

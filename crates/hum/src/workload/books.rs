//! The bookstore workload on the seed lab's `books` table: 20% inserts of
//! new books, 40% price and stock updates (a tenth of them on the 10 hot
//! rows with the lowest ids), 40% reads (by id, or a fifth of them by
//! author), the reads sent to a read target when there is one, as an
//! application uses a read replica.
//!
//! New ids come from a sequence hum owns, `hum_books_id`, moved past the
//! table's highest id at the start, so concurrent runs never collide.

use std::sync::atomic::{AtomicI64, Ordering};

use rand::RngExt;
use tokio_postgres::{Client, Statement};

use super::{Int, Tx, Work, first_error, open_read};
use crate::client::TxError;
use crate::error::{Error, ErrorKind, describe};

/// The seed lab's table (crates/lab `SEED_SCHEMA`), for servers without it;
/// idempotent, and also what a subscriber of the node gets.
pub(crate) const CREATE: &str = "
    create table if not exists books (
        id bigint primary key,
        title text not null,
        author text,
        price numeric(10,2),
        stock integer not null default 0,
        updated_at timestamptz not null default now()
    );
    create index if not exists books_author_idx on books (author);
    create index if not exists books_updated_at_idx on books (updated_at);";

const SEQUENCE: &str = "create sequence if not exists hum_books_id";

const HOT_ROWS: i64 = 10;

const AUTHORS: [&str; 16] = [
    "Ursula K. Le Guin",
    "Octavia E. Butler",
    "Frank Herbert",
    "Isaac Asimov",
    "N. K. Jemisin",
    "Iain M. Banks",
    "Ted Chiang",
    "Ann Leckie",
    "Stanisław Lem",
    "Arkady Strugatsky",
    "Liu Cixin",
    "Mary Shelley",
    "Jules Verne",
    "Philip K. Dick",
    "Becky Chambers",
    "Kim Stanley Robinson",
];
const ADJECTIVES: [&str; 8] = [
    "Silent", "Distant", "Broken", "Hidden", "Last", "Burning", "Quiet", "Endless",
];
const NOUNS: [&str; 8] = [
    "River", "Machine", "Empire", "Garden", "Signal", "Harbor", "Winter", "Archive",
];

pub(crate) struct Books {
    /// The lowest id at the start: the hot rows are the 10 from here.
    lo: i64,
    /// The highest id known; inserts raise it.
    hi: AtomicI64,
    reads_elsewhere: bool,
}

pub(crate) struct Statements {
    insert: Statement,
    update: Statement,
    reads: Reads,
}

pub(crate) struct Reads {
    by_id: Statement,
    by_author: Statement,
}

impl Books {
    /// Checks the table, moves the id sequence past its rows, and notes
    /// the id range.
    pub(crate) async fn setup(client: &Client, node: &str, reads_elsewhere: bool) -> Result<Books, Error> {
        let failed = |e: tokio_postgres::Error| {
            Error::with(
                ErrorKind::Setup,
                format!("{node}: preparing the books workload: {}", describe(&e)),
                e,
            )
        };
        let exists: bool = client
            .query_one("select to_regclass('books') is not null", &[])
            .await
            .map_err(failed)?
            .get(0);
        if !exists {
            return Err(Error::new(
                ErrorKind::Setup,
                format!(
                    "{node}: there is no books table; the seed lab's schema creates it \
                     (`prodhome up`), or `prodhome hum --init --workload books`"
                ),
            ));
        }
        if let Err(e) = client.batch_execute(SEQUENCE).await {
            // Two runs creating it at once: the other one won.
            if client.batch_execute(SEQUENCE).await.is_err() {
                return Err(failed(e));
            }
        }
        let row = client
            .query_one(
                "select min(id), max(id), setval('hum_books_id', greatest(\
                 (select coalesce(max(id), 0) from books), (select last_value from hum_books_id), 1)) \
                 from books",
                &[],
            )
            .await
            .map_err(failed)?;
        let lo: Option<i64> = row.get(0);
        let hi: Option<i64> = row.get(1);
        Ok(Books {
            lo: lo.unwrap_or(1),
            hi: AtomicI64::new(hi.unwrap_or(0)),
            reads_elsewhere,
        })
    }

    /// An id between the lowest and the highest; with `hot`, one of the
    /// hot rows. `None` while the table is empty.
    fn pick(&self, draw: u64, hot: bool) -> Option<i64> {
        let hi = self.hi.load(Ordering::Relaxed);
        if hi < self.lo {
            return None;
        }
        let span = if hot {
            HOT_ROWS.min(hi - self.lo + 1)
        } else {
            hi - self.lo + 1
        };
        Some(self.lo + (draw % span as u64) as i64)
    }

    async fn read(&self, tx: Tx<'_, Self>, by_author: bool, draw: u64) -> Result<(), TxError> {
        let id = Int(self.pick(draw, false).unwrap_or(self.lo));
        let author = AUTHORS[(draw % AUTHORS.len() as u64) as usize];
        let Some(conn) = tx.read else {
            let (c, s) = (&tx.main.client, &tx.main.statements.reads);
            let r = match by_author {
                true => c.execute(&s.by_author, &[&author]).await,
                false => c.execute(&s.by_id, &[&id]).await,
            };
            return first_error(c, [r]);
        };
        if !conn.up() {
            // A read target that is down fails its reads, it does not
            // stall the writes: try again only once the backoff is over.
            if !conn.due() {
                return Err(TxError::unavailable());
            }
            let attempt = open_read(self, conn.config()).await;
            if !conn.record(attempt, tx.stats) {
                return Err(TxError::unavailable());
            }
        }
        let session = conn.session().ok_or_else(TxError::unavailable)?;
        let (c, s) = (&session.client, &session.statements);
        let r = match by_author {
            true => c.execute(&s.by_author, &[&author]).await,
            false => c.execute(&s.by_id, &[&id]).await,
        };
        match first_error(c, [r]) {
            Err(e) if e.broken => {
                conn.lost();
                // The write connection is fine.
                Err(TxError { broken: false, ..e })
            }
            other => other,
        }
    }
}

/// Creates the table (as the seed lab has it) and the id sequence when
/// missing; never touches existing rows.
pub(crate) async fn init(client: &Client) -> Result<(), tokio_postgres::Error> {
    client.batch_execute(CREATE).await?;
    client.batch_execute(SEQUENCE).await
}

async fn prepare_reads(c: &Client) -> Result<Reads, tokio_postgres::Error> {
    let r = tokio::join!(
        biased;
        c.prepare("select id, title, author, price, stock from books where id = $1"),
        c.prepare("select id, title, price from books where author = $1 order by id desc limit 20"),
    );
    Ok(Reads {
        by_id: r.0?,
        by_author: r.1?,
    })
}

impl Work for Books {
    type Main = Statements;
    type Read = Reads;
    type Client = ();

    async fn prepare_main(&self, c: &Client) -> Result<Statements, tokio_postgres::Error> {
        let r = tokio::join!(
            biased;
            c.prepare(
                "insert into books (id, title, author, price, stock) \
                 values (nextval('hum_books_id'), $1, $2, $3::int4 / 100.0, $4::int4) returning id"
            ),
            c.prepare(
                "update books set price = $2::int4 / 100.0, stock = greatest(stock + $3::int4, 0), \
                 updated_at = now() where id = $1"
            ),
            prepare_reads(c),
        );
        Ok(Statements {
            insert: r.0?,
            update: r.1?,
            reads: r.2?,
        })
    }

    async fn prepare_read(&self, c: &Client) -> Result<Reads, tokio_postgres::Error> {
        prepare_reads(c).await
    }

    fn uses_reads(&self) -> bool {
        self.reads_elsewhere
    }

    fn client_state(&self, _client: u32) {}

    fn hot_row_lock(&self, hot: u64) -> Option<String> {
        let id = self.lo + (hot % HOT_ROWS as u64) as i64;
        Some(format!("select 1 from books where id = {id} for update"))
    }

    async fn execute<'a>(&'a self, tx: Tx<'a, Self>) -> Result<&'static str, TxError> {
        let c = &tx.main.client;
        let s = &tx.main.statements;
        let op = tx.rng.random_range(0..100u32);
        let draw: u64 = tx.rng.random();
        let price = Int(tx.rng.random_range(500..10_000));
        let count = Int(tx.rng.random_range(-3..=10));
        match op {
            0..20 => {
                let title = format!(
                    "The {} {}",
                    ADJECTIVES[(draw % 8) as usize],
                    NOUNS[(draw / 8 % 8) as usize]
                );
                let author = AUTHORS[(draw / 64 % AUTHORS.len() as u64) as usize];
                let stock = Int(count.0.abs() * 5);
                let row = c
                    .query_one(&s.insert, &[&title, &author, &price, &stock])
                    .await
                    .map_err(|e| TxError::from_pg(&e, c))?;
                let id: i64 = row.get(0);
                self.hi.fetch_max(id, Ordering::Relaxed);
                tx.writes.push(("books", id));
                Ok("insert")
            }
            20..60 => {
                let Some(id) = self.pick(draw / 10, draw.is_multiple_of(10)) else {
                    return Ok("update"); // nothing to update yet
                };
                let n = c
                    .execute(&s.update, &[&Int(id), &price, &count])
                    .await
                    .map_err(|e| TxError::from_pg(&e, c))?;
                if n == 1 {
                    tx.writes.push(("books", id));
                }
                Ok("update")
            }
            _ => {
                self.read(tx, draw.is_multiple_of(5), draw / 5).await?;
                Ok("read")
            }
        }
    }
}

//! A small demo dataset: three tenants of different sizes, with test data, NULLs and every stage.

use anyhow::Result;
use shared::auth::Role;
use sqlx::PgPool;
use uuid::Uuid;

/// The demo tenants; the first is the tenant of the operators' runbook.
pub const TENANTS: [(&str, &str, &str, i32); 3] = [
    ("a11dfb63-4b18-4eb8-872e-747af2e37c46", "acme", "Acme Corp", 40),
    ("b22e0c74-5c29-4f90-983f-858b03f48d57", "globex", "Globex", 15),
    ("c33f1d85-6d3a-4a01-a94a-969c14a59e68", "initech", "Initech", 5),
];

/// The demo employee of each role (the `sub` of `devtools token <role>`), and one more employee.
pub fn demo_employee(role: Role) -> Uuid {
    Uuid::from_u128(0xe000_0000_0000_4000_8000_0000_0000_0000 + u128::from(4 - role.rank()))
}
const OTHER_EMPLOYEE: Uuid = Uuid::from_u128(0xe000_0000_0000_4000_8000_0000_0000_0005);

/// The demo teams: sales (the demo manager and employee) and support (the other employee).
pub const TEAMS: [(&str, Uuid); 2] = [
    (
        "sales",
        Uuid::from_u128(0x7ea0_0000_0000_4000_8000_0000_0000_0001),
    ),
    (
        "support",
        Uuid::from_u128(0x7ea0_0000_0000_4000_8000_0000_0000_0002),
    ),
];

pub async fn demo(pool: &PgPool) -> Result<()> {
    for (id, slug, name, size) in TENANTS {
        let id: uuid::Uuid = id.parse()?;
        let inserted =
            sqlx::query("INSERT INTO tenant (id, slug, name) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING")
                .bind(id)
                .bind(slug)
                .bind(name)
                .execute(pool)
                .await?
                .rows_affected();
        if inserted == 0 {
            println!("tenant {slug} ({id}) already seeded");
            continue;
        }
        // Records go round the demo employee, the demo manager, the other employee and no one.
        let assignees = [
            Some(demo_employee(Role::Employee)),
            Some(demo_employee(Role::Manager)),
            Some(OTHER_EMPLOYEE),
            None,
        ];
        sqlx::query(
            "INSERT INTO team_members (tenant_id, team_id, employee_id)
             VALUES ($1, $2, $4), ($1, $2, $5), ($1, $3, $6)",
        )
        .bind(id)
        .bind(TEAMS[0].1)
        .bind(TEAMS[1].1)
        .bind(demo_employee(Role::Manager))
        .bind(demo_employee(Role::Employee))
        .bind(OTHER_EMPLOYEE)
        .execute(pool)
        .await?;
        // Deterministic rows from generate_series: row g of a tenant of size n.
        sqlx::query(
            "INSERT INTO contacts (tenant_id, first_name, last_name, email, is_test_data, created_at)
               SELECT $1, 'Contact', 'No. ' || g, 'contact' || g || '@example.com', g % 10 = 0,
                      now() - make_interval(days => g)
                 FROM generate_series(1, $2 * 3) g",
        )
        .bind(id)
        .bind(size)
        .execute(pool)
        .await?;
        sqlx::query(
            "INSERT INTO accounts (tenant_id, name, is_test_data, created_at)
               SELECT $1, 'Account ' || g, CASE WHEN g % 7 = 0 THEN NULL ELSE g % 9 = 0 END,
                      now() - make_interval(days => 2 * g)
                 FROM generate_series(1, $2) g",
        )
        .bind(id)
        .bind(size)
        .execute(pool)
        .await?;
        sqlx::query(
            "INSERT INTO leads (tenant_id, first_name, last_name, company, email, source, status,
                                is_test_data, created_at, created_date, assigned_to)
               SELECT $1, 'Lead', 'No. ' || g, 'Company ' || (g % 11), 'lead' || g || '@example.com',
                      (ARRAY['web', 'referral', 'event', NULL])[1 + g % 4],
                      (ARRAY['new', 'contacted', 'qualified', 'converted', 'lost', NULL])[1 + g % 6],
                      g % 8 = 0, now() - make_interval(days => g * 2),
                      CASE WHEN g % 3 = 0 THEN NULL ELSE now() - make_interval(days => g * 2, hours => 3) END,
                      ($3::uuid[])[1 + g % 4]
                 FROM generate_series(1, $2 * 2) g",
        )
        .bind(id)
        .bind(size)
        .bind(assignees)
        .execute(pool)
        .await?;
        sqlx::query(
            "INSERT INTO opportunities (tenant_id, name, stage, amount, is_test_data, created_at, updated_at,
                                        assigned_to)
               SELECT $1, 'Deal ' || g,
                      (ARRAY['qualification', 'proposal', 'negotiation', 'won', 'closed_won', 'lost',
                             'closed_lost', NULL])[1 + g % 8],
                      CASE WHEN g % 5 = 0 THEN NULL ELSE round((1000 + g * 137.35)::numeric, 2) END,
                      g % 9 = 0, now() - make_interval(days => g * 3), now() - make_interval(hours => g * 5),
                      ($3::uuid[])[1 + g % 4]
                 FROM generate_series(1, $2) g",
        )
        .bind(id)
        .bind(size)
        .bind(assignees)
        .execute(pool)
        .await?;
        sqlx::query(
            "INSERT INTO activities (tenant_id, type, subject, status, is_test_data, created_at, assigned_to)
               SELECT $1, (ARRAY['call', 'email', 'meeting', 'task'])[1 + g % 4], 'Follow-up ' || g,
                      (ARRAY['pending', 'completed', NULL])[1 + g % 3], g % 10 = 0,
                      now() - make_interval(hours => g * 7), ($3::uuid[])[1 + g % 4]
                 FROM generate_series(1, $2 * 4) g",
        )
        .bind(id)
        .bind(size)
        .bind(assignees)
        .execute(pool)
        .await?;
        println!("seeded tenant {slug} ({id})");
    }
    Ok(())
}

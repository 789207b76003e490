//! The one drill-down rule the token cannot decide alone: whether a manager is in the team they ask
//! for, or shares a team with the employee they ask for (`team_members`, read on every such request).

use uuid::Uuid;

use super::identity::Assignees;
use crate::platform::db::Database;

/// Whether `manager` may read `assignees` of `tenant`: a member of that team, or in a team with that
/// employee. [`Assignees::All`] is never a manager's to read.
pub async fn manager_shares(
    db: &Database,
    tenant: Uuid,
    manager: Uuid,
    assignees: Assignees,
) -> Result<bool, sqlx::Error> {
    let (tenant, manager) = (tenant.hyphenated(), manager.hyphenated());
    let statement = match assignees {
        Assignees::All => return Ok(false),
        Assignees::Team(team) => format!(
            "SELECT EXISTS (SELECT FROM team_members
                             WHERE tenant_id = '{tenant}'::uuid AND team_id = '{team}'::uuid
                               AND employee_id = '{manager}'::uuid)",
            team = team.hyphenated(),
        ),
        Assignees::Employee(employee) => format!(
            "SELECT EXISTS (SELECT FROM team_members mine
                              JOIN team_members theirs
                                ON theirs.tenant_id = mine.tenant_id AND theirs.team_id = mine.team_id
                             WHERE mine.tenant_id = '{tenant}'::uuid AND mine.employee_id = '{manager}'::uuid
                               AND theirs.employee_id = '{employee}'::uuid)",
            employee = employee.hyphenated(),
        ),
    };
    let results = db.read(&[statement]).await?;
    let row = results
        .first()
        .and_then(|rows| rows.first())
        .ok_or(sqlx::Error::RowNotFound)?;
    sqlx::Row::try_get(row, 0)
}

//! The Component Repository's OpenAPI document, served at
//! `/api-docs/component-repository/openapi.json`.
//!
//! The handlers parse loosely typed OIH bodies themselves, so each operation is described by
//! an empty function here rather than by annotating the handler. The test
//! `openapi_lists_the_endpoints` checks that every mounted path is listed.

use utoipa::OpenApi as _;
use utoipa::openapi::OpenApi;

pub fn document() -> OpenApi {
    let mut doc = ComponentApi::openapi();
    doc.info.version = env!("CARGO_PKG_VERSION").into();
    doc
}

#[derive(utoipa::OpenApi)]
#[openapi(
    info(
        title = "Component Repository",
        description = "Components (what a flow node's `componentId` names, and how to run it: \
                       `docker`, `slug`, `process` or `builtin` distribution), global \
                       components, and virtual components with versions and per-tenant \
                       configs, at OIH's paths. Every endpoint needs `Authorization: Bearer \
                       <token>` (401 first, before the body is read). Errors are \
                       `{errors: [{message}]}`, one entry per failed rule."
    ),
    paths(
        components_list,
        components_create,
        components_get,
        components_patch,
        components_delete,
        components_enrich,
        global_start,
        global_stop,
        global_restart_all,
        virtual_list,
        virtual_create,
        virtual_defaults,
        virtual_defaults_config,
        virtual_get,
        virtual_patch,
        virtual_delete,
        version_create,
        version_get,
        version_patch,
        version_delete,
        config_create,
        config_patch,
        version_action,
        version_trigger,
    )
)]
struct ComponentApi;

// Reused descriptions.
const NO_AUTH: &str =
    "`{errors: [{message: \"Missing authorization header.\"}]}`, or an invalid token";
const MISSING: &str = "`{errors: [{message: \"MISSING_PERMISSION\"}]}`";
const NOT_WRITABLE: &str = "`MISSING_PERMISSION`; `Not authorized` (neither an admin nor a user owner); a built-in component is read-only";
const COMPONENT_BODY: &str = "`{name, description?, access?: \"public\"|\"private\" (default private), \
    distribution: {type: \"docker\" (default), image} | {type: \"slug\", slugUrl} | \
    {type: \"process\", command: [program, args…], workingDirectory?, env?} | \
    {type: \"builtin\", name}, isGlobal?, resources?: {limits, requests}, descriptor?, \
    artifactId?, version?, repository?, owners?, specialFlags? (admins only), …}`. \
    `tenant` is the caller's; `id`, `createdAt`, `updatedAt` are ignored.";
const NO_COMPONENT: &str =
    "`Component is not found` (also an unknown `artifact_…` id or `?version=`)";
const BAD_COMPONENT_ID: &str = "`Invalid id`, or `version parameter should be a number`";
const NO_VC: &str =
    "`VirtualComponent is not found`: unknown, malformed, or not visible to the caller";

#[utoipa::path(get, path = "/components", tag = "components",
    params(
        ("page[size]" = Option<u64>, Query, description = "Page size, 1 to 100 (default 50)"),
        ("page[number]" = Option<u64>, Query, description = "Page number, from 1"),
        ("artifactId" = Option<String>, Query, description = "Only components with this `artifact_…` id"),
    ),
    responses(
        (status = 200, description = "`{data: [Component], meta: {page, perPage, total, totalPages}}` in creation order: an admin sees all, anyone else the public components and those they own (built-in components are public)"),
        (status = 400, description = "`page[number] parameter should be greater than 0`, `… should be a positive integer`, `page[size] shouldn't be greater than 100`, `artifactId parameter is not a valid Artifact Id`"),
        (status = 401, description = NO_AUTH),
    ))]
#[allow(dead_code)]
fn components_list() {}

#[utoipa::path(post, path = "/components", tag = "components",
    request_body(content = Object, description = COMPONENT_BODY),
    responses(
        (status = 201, description = "`{data: Component, meta: {}}`; the caller is added as a user owner"),
        (status = 400, description = "One entry per failed rule, e.g. `Path `name` is required.`, an unknown `distribution.type`, a `builtin` name this hub does not have; or a body that is not a JSON object"),
        (status = 401, description = NO_AUTH),
        (status = 403, description = "`MISSING_PERMISSION` (`components.create`); `Only admins may set specialFlags`"),
        (status = 413, description = "Body above `MAX_REQUEST_BODY_SIZE`"),
        (status = 415, description = "Not `application/json`"),
    ))]
#[allow(dead_code)]
fn components_create() {}

#[utoipa::path(get, path = "/components/{id}", tag = "components",
    params(
        ("id" = String, Path, description = "Component id, or an `artifact_…` id (highest `version`)"),
        ("version" = Option<f64>, Query, description = "With an artifact id: that version"),
    ),
    responses(
        (status = 200, description = "`{data: Component, meta: {}}`"),
        (status = 400, description = BAD_COMPONENT_ID),
        (status = 401, description = NO_AUTH),
        (status = 403, description = "`Not authorized`: private and not owned by the caller (`components.any.read` and admins read all)"),
        (status = 404, description = NO_COMPONENT),
    ))]
#[allow(dead_code)]
fn components_get() {}

#[utoipa::path(patch, path = "/components/{id}", tag = "components",
    params(
        ("id" = String, Path, description = "Component id or `artifact_…` id"),
        ("version" = Option<f64>, Query, description = "With an artifact id: that version"),
    ),
    request_body(content = Object, description = "Top-level fields replacing the component's (`tenant` is ignored)"),
    responses(
        (status = 200, description = "`{data: Component, meta: {}}`"),
        (status = 400, description = "`Invalid id`, or one entry per failed rule (nothing is changed)"),
        (status = 401, description = NO_AUTH),
        (status = 403, description = NOT_WRITABLE),
        (status = 404, description = NO_COMPONENT),
    ))]
#[allow(dead_code)]
fn components_patch() {}

#[utoipa::path(delete, path = "/components/{id}", tag = "components",
    params(
        ("id" = String, Path, description = "Component id or `artifact_…` id"),
        ("version" = Option<f64>, Query, description = "With an artifact id: that version"),
    ),
    responses(
        (status = 204, description = "Deleted"),
        (status = 400, description = BAD_COMPONENT_ID),
        (status = 401, description = NO_AUTH),
        (status = 403, description = "`MISSING_PERMISSION` (`components.delete`); `Not authorized`; a built-in component is read-only"),
        (status = 404, description = NO_COMPONENT),
        (status = 409, description = "`Component is used by active flows and cannot be deleted: \"<name>\" (<flowId>), …, <n> flow(s) of other tenants`: flows of the caller's tenant are named (all for an admin), others counted"),
    ))]
#[allow(dead_code)]
fn components_delete() {}

#[utoipa::path(patch, path = "/components/enrich/{id}", tag = "components",
    params(
        ("id" = String, Path, description = "Component id or `artifact_…` id"),
        ("repository" = Option<String>, Query, description = "`https://github.com/<owner>/<repository>`; default the component's `repository`"),
        ("version" = Option<f64>, Query, description = "With an artifact id: that version"),
    ),
    responses(
        (status = 204, description = "`actions`, `triggers` and `rating` filled from the repository's `component.json`"),
        (status = 400, description = "`Missing Repository URL`, not a GitHub repository URL, or an unusable `component.json`"),
        (status = 401, description = NO_AUTH),
        (status = 403, description = NOT_WRITABLE),
        (status = 404, description = NO_COMPONENT),
        (status = 502, description = "GitHub could not be reached"),
    ))]
#[allow(dead_code)]
fn components_enrich() {}

#[utoipa::path(post, path = "/components/global/{id}/start", tag = "global components",
    params(("id" = String, Path, description = "Id of a component with `isGlobal: true`")),
    responses(
        (status = 200, description = "`{message: \"Component started\", code: 200}`; publishes `component.starting` (the component with `_id`, without owners, plus `startedBy`) and sets `active: true`"),
        (status = 400, description = "`Invalid id`; `Component is not global`"),
        (status = 401, description = NO_AUTH),
        (status = 403, description = "`MISSING_PERMISSION`: admins (`all`) only"),
        (status = 404, description = "`Component is not found`"),
    ))]
#[allow(dead_code)]
fn global_start() {}

#[utoipa::path(post, path = "/components/global/{id}/stop", tag = "global components",
    params(("id" = String, Path, description = "Id of a component with `isGlobal: true`")),
    responses(
        (status = 200, description = "`{message: \"Component stopped\", code: 200}`; publishes `component.stopping` (with `stoppedBy`) and sets `active: false`"),
        (status = 400, description = "`Invalid id`; `Component is not global`"),
        (status = 401, description = NO_AUTH),
        (status = 403, description = "`MISSING_PERMISSION`: admins (`all`) only"),
        (status = 404, description = "`Component is not found`"),
    ))]
#[allow(dead_code)]
fn global_stop() {}

#[utoipa::path(post, path = "/components/global/restart/all", tag = "global components",
    params(
        ("emitThrottle" = Option<f64>, Query, description = "Seconds between two components (default 10, 0 to 86400)"),
        ("restartDelay" = Option<f64>, Query, description = "Seconds between a component's stop and start (default 2, 0 to 86400)"),
    ),
    responses(
        (status = 200, description = "`{message: \"<n> Components will be restarted\", code: 200}`: every active global component gets `component.stopping`, then `component.starting`, in the background"),
        (status = 400, description = "A wait that is not a number of seconds between 0 and 86400"),
        (status = 401, description = NO_AUTH),
        (status = 403, description = "`MISSING_PERMISSION`: admins (`all`) only"),
        (status = 503, description = "Too many restarts pending, or shutting down"),
    ))]
#[allow(dead_code)]
fn global_restart_all() {}

#[utoipa::path(get, path = "/virtual-components", tag = "virtual components",
    responses(
        (status = 200, description = "`{data: [VirtualComponent], meta: {}}`: active ones that are public, owned by the caller or in the caller's tenant (all for an admin), oldest first"),
        (status = 401, description = NO_AUTH),
    ))]
#[allow(dead_code)]
fn virtual_list() {}

#[utoipa::path(post, path = "/virtual-components", tag = "virtual components",
    request_body(content = Object, description = "`{name, access?, active?, versions?: [{id, componentVersion, apiVersion}], defaultVersionId?, tenant?, owners?}`; `tenant` and `owners` are an admin's choice, anyone else's are their own"),
    responses(
        (status = 201, description = "`{data: VirtualComponent, meta: {}}`"),
        (status = 400, description = "One entry per failed rule"),
        (status = 401, description = NO_AUTH),
        (status = 403, description = MISSING),
    ))]
#[allow(dead_code)]
fn virtual_create() {}

#[utoipa::path(get, path = "/virtual-components/defaults", tag = "virtual components",
    params(
        ("verbose" = Option<bool>, Query, description = "`false`: name, ids and function names only"),
        ("filterActiveFunctions" = Option<bool>, Query, description = "Only active actions and triggers"),
    ),
    responses(
        (status = 200, description = "`{data: [ComponentVersion], meta: {}}`: the default versions of the visible virtual components (also those owned by the caller's tenant)"),
        (status = 401, description = NO_AUTH),
    ))]
#[allow(dead_code)]
fn virtual_defaults() {}

#[utoipa::path(get, path = "/virtual-components/defaults/config", tag = "virtual components",
    responses(
        (status = 200, description = "`{data: [ComponentConfig], meta: {}}`: the caller's tenant's configs of visible default versions (all configs for an admin; none without a tenant)"),
        (status = 401, description = NO_AUTH),
    ))]
#[allow(dead_code)]
fn virtual_defaults_config() {}

#[utoipa::path(get, path = "/virtual-components/{id}", tag = "virtual components",
    params(("id" = String, Path, description = "Virtual component id")),
    responses(
        (status = 200, description = "`{data: VirtualComponent, meta: {}}`"),
        (status = 401, description = NO_AUTH),
        (status = 404, description = NO_VC),
    ))]
#[allow(dead_code)]
fn virtual_get() {}

#[utoipa::path(patch, path = "/virtual-components/{id}", tag = "virtual components",
    params(("id" = String, Path, description = "Virtual component id")),
    request_body(content = Object, description = "Top-level fields replacing the virtual component's; a non-admin's `tenant` is ignored; emptied `owners` become the caller"),
    responses(
        (status = 200, description = "`{data: VirtualComponent, meta: {}}`"),
        (status = 400, description = "One entry per failed rule"),
        (status = 401, description = NO_AUTH),
        (status = 403, description = "`MISSING_PERMISSION` (`components.update`); `Not authorized` (a public one belongs to the admins)"),
        (status = 404, description = NO_VC),
    ))]
#[allow(dead_code)]
fn virtual_patch() {}

#[utoipa::path(delete, path = "/virtual-components/{id}", tag = "virtual components",
    params(("id" = String, Path, description = "Virtual component id")),
    responses(
        (status = 204, description = "Deleted, with its versions and their configs, in one transaction"),
        (status = 401, description = NO_AUTH),
        (status = 403, description = "`MISSING_PERMISSION` (`components.delete`); `Not authorized`"),
        (status = 404, description = NO_VC),
    ))]
#[allow(dead_code)]
fn virtual_delete() {}

#[utoipa::path(post, path = "/virtual-components/{id}", tag = "component versions",
    params(("id" = String, Path, description = "Virtual component id")),
    request_body(content = Object, description = "A component version: `{name, description?, componentId, authorization: {authType, authSetupLink?}, actions?, triggers?, logo?}`; `actions`/`triggers` as a list or as a component.json map"),
    responses(
        (status = 201, description = "`{data: ComponentVersion, meta: {}}` (not added to `versions`, not made the default)"),
        (status = 400, description = "One entry per failed rule (with `field`)"),
        (status = 401, description = NO_AUTH),
        (status = 403, description = "`MISSING_PERMISSION` (`components.create`); `Not authorized`"),
        (status = 404, description = "`VirtualComponent is not found`; `Component not found` (the `componentId` does not exist or the caller cannot read it)"),
    ))]
#[allow(dead_code)]
fn version_create() {}

#[utoipa::path(get, path = "/virtual-components/{id}/{version_id}", tag = "component versions",
    params(
        ("id" = String, Path, description = "Virtual component id"),
        ("version_id" = String, Path, description = "Component version id (of that virtual component)"),
    ),
    responses(
        (status = 200, description = "`{data: ComponentVersion, meta: {}}`"),
        (status = 400, description = "`Invalid id`"),
        (status = 401, description = NO_AUTH),
        (status = 404, description = "`VirtualComponent is not found`; `Component version could not be found`"),
    ))]
#[allow(dead_code)]
fn version_get() {}

#[utoipa::path(patch, path = "/virtual-components/{id}/{version_id}", tag = "component versions",
    params(
        ("id" = String, Path, description = "Virtual component id"),
        ("version_id" = String, Path, description = "Component version id"),
    ),
    request_body(content = Object, description = "Top-level fields replacing the version's"),
    responses(
        (status = 200, description = "`{data: ComponentVersion, meta: {}}`"),
        (status = 400, description = "`Invalid id`, or one entry per failed rule"),
        (status = 401, description = NO_AUTH),
        (status = 403, description = "`MISSING_PERMISSION` (`components.update`); `Not authorized`"),
        (status = 404, description = "`VirtualComponent is not found`; `ComponentVersion is not found`; `Component not found`"),
    ))]
#[allow(dead_code)]
fn version_patch() {}

#[utoipa::path(delete, path = "/virtual-components/{id}/{version_id}", tag = "component versions",
    params(
        ("id" = String, Path, description = "Virtual component id"),
        ("version_id" = String, Path, description = "Component version id"),
    ),
    responses(
        (status = 204, description = "Deleted with its configs and its entry in the virtual component's `versions`"),
        (status = 400, description = "`Invalid component version id`; `Cannot delete the default component Version`"),
        (status = 401, description = NO_AUTH),
        (status = 403, description = "`MISSING_PERMISSION` (`components.delete`); `Not authorized`"),
        (status = 404, description = "`VirtualComponent is not found`; `Component version could not be found`"),
    ))]
#[allow(dead_code)]
fn version_delete() {}

#[utoipa::path(post, path = "/virtual-components/{id}/{version_id}/config", tag = "component versions",
    params(
        ("id" = String, Path, description = "Virtual component id"),
        ("version_id" = String, Path, description = "Component version id"),
    ),
    request_body(content = Object, description = "`{authClientId?, tenant?}`; `tenant` only for admins, anyone else configures their own tenant"),
    responses(
        (status = 201, description = "`{data: ComponentConfig}` (no `meta`, as OIH)"),
        (status = 400, description = "`Invalid id`; `Invalid auth Client id`; `Configuration requires a Tenant`; `This component version has already been set.`"),
        (status = 401, description = NO_AUTH),
        (status = 403, description = "`MISSING_PERMISSION` (`components.write`)"),
        (status = 404, description = "`VirtualComponent is not found`; `Component version could not be found`"),
    ))]
#[allow(dead_code)]
fn config_create() {}

#[utoipa::path(patch, path = "/virtual-components/{id}/{version_id}/config", tag = "component versions",
    params(
        ("id" = String, Path, description = "Virtual component id"),
        ("version_id" = String, Path, description = "Component version id"),
    ),
    request_body(content = Object, description = "`{authClientId, tenant?}` (`tenant` only for admins)"),
    responses(
        (status = 200, description = "`{data: ComponentConfig, meta: {}}`"),
        (status = 400, description = "`Invalid id`; `Invalid auth Client id`"),
        (status = 401, description = NO_AUTH),
        (status = 403, description = "`MISSING_PERMISSION` (`components.write`)"),
        (status = 404, description = "`VirtualComponent is not found`; `This component version has not been found.` (also: no config of the tenant)"),
    ))]
#[allow(dead_code)]
fn config_patch() {}

#[utoipa::path(get, path = "/virtual-components/{id}/{version_id}/actions/{name}", tag = "component versions",
    params(
        ("id" = String, Path, description = "Virtual component id"),
        ("version_id" = String, Path, description = "Component version id"),
        ("name" = String, Path, description = "Action name"),
    ),
    responses(
        (status = 200, description = "`{data: Function, meta: {}}`"),
        (status = 400, description = "`Invalid id`"),
        (status = 401, description = NO_AUTH),
        (status = 404, description = "`VirtualComponent is not found`; `Component version or action could not be found!`"),
    ))]
#[allow(dead_code)]
fn version_action() {}

#[utoipa::path(get, path = "/virtual-components/{id}/{version_id}/triggers/{name}", tag = "component versions",
    params(
        ("id" = String, Path, description = "Virtual component id"),
        ("version_id" = String, Path, description = "Component version id"),
        ("name" = String, Path, description = "Trigger name"),
    ),
    responses(
        (status = 200, description = "`{data: Function, meta: {}}`"),
        (status = 400, description = "`Invalid id`"),
        (status = 401, description = NO_AUTH),
        (status = 404, description = "`VirtualComponent is not found`; `Component version or trigger could not be found!`"),
    ))]
#[allow(dead_code)]
fn version_trigger() {}

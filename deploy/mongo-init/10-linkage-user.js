// The bundled MongoDB's pipeline user, created once, on the first start of an empty data
// volume (the mongo image runs /docker-entrypoint-initdb.d as root, before auth is on).
// The role is docs/RUNBOOK.md §7's least-privilege `linkage` role, privilege for privilege
// (tests/test_compose.py compares the two); the password comes from LINKAGE_MONGO_PASSWORD.
const admin = db.getSiblingDB("admin");
if (!process.env.LINKAGE_MONGO_PASSWORD) {
  throw new Error("LINKAGE_MONGO_PASSWORD is not set");
}
admin.createRole({role: "linkage", privileges: [
  {resource: {db: "app", collection: "delivery_statuses"}, actions: ["find", "update", "createIndex", "listIndexes", "collStats"]},
  {resource: {db: "app", collection: "users"},             actions: ["find", "update", "createIndex", "listIndexes", "collStats"]},
  {resource: {db: "app", collection: "customers_v2"},      actions: ["find", "update", "createIndex", "listIndexes", "collStats"]},
  {resource: {db: "app", collection: "orders"},            actions: ["find", "createIndex", "listIndexes", "collStats"]},
  {resource: {db: "app", collection: ""}, actions: ["listCollections"]},
  {resource: {db: "app", collection: "linkage_runs"},          actions: ["find", "insert", "update", "remove", "createIndex"]},
  {resource: {db: "app", collection: "linkage_journal"},       actions: ["find", "insert", "update", "remove", "createIndex"]},
  {resource: {db: "app", collection: "linkage_lock"},          actions: ["find", "insert", "update", "remove"]},
  {resource: {db: "app", collection: "linkage_review"},        actions: ["find", "insert", "update", "remove", "createIndex"]},
  {resource: {db: "app", collection: "linkage_decisions"},     actions: ["find", "insert", "update", "createIndex"]},
  {resource: {db: "app", collection: "linkage_alerts"},        actions: ["find", "insert", "remove", "createIndex"]},
  {resource: {db: "app", collection: "linkage_paging"},        actions: ["find", "insert", "update"]},
  {resource: {db: "app", collection: "linkage_customer_keys"}, actions: ["find", "insert", "update", "remove", "createIndex"]},
  {resource: {db: "app", collection: "linkage_link_plan"},     actions: ["find", "insert", "update", "remove", "createIndex"]},
  {resource: {db: "app", collection: "linkage_wanted_keys"},   actions: ["find", "insert", "update", "remove", "createIndex"]},
  {resource: {db: "app", collection: "linkage_index_probe"},   actions: ["insert", "createIndex", "dropCollection"]},
  {resource: {db: "app", collection: "linkage_ttl_probe"},     actions: ["createIndex", "listIndexes", "dropCollection"]},
  {resource: {db: "app", collection: "linkage_update_probe"},  actions: ["find", "insert", "update", "remove"]},
  {resource: {db: "app", collection: "linkage_model"},         actions: ["find", "insert", "update"]},
  {resource: {db: "config", collection: "collections"},        actions: ["find"]},
], roles: []});
admin.createUser({user: "linkage", pwd: process.env.LINKAGE_MONGO_PASSWORD, roles: ["linkage"]});
print("created role and user linkage (least privilege, docs/RUNBOOK.md §7)");

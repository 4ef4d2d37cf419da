#include "store/registry.h"

#include <gtest/gtest.h>
#include <sqlite3.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>

#include "tests/unit/temp_dir.h"

namespace svcbox::store {
namespace {

IpAddress ip(const char* text) { return *IpAddress::parse(text); }

Service web(const std::string& name = "web") {
  Service service;
  service.name = name;
  service.selector = Labels{{"app", "web"}};
  service.ports = {ServicePort{"", Protocol::kTcp, 80, PortRef{8080, {}}}};
  return service;
}

Pod pod(const std::string& name, const char* address) {
  Pod pod;
  pod.name = name;
  pod.ips = {ip(address)};
  pod.labels = {{"app", "web"}};
  pod.ports = {ContainerPort{"web", "http", 8080, Protocol::kTcp}};
  return pod;
}

class RegistryTest : public ::testing::Test {
 protected:
  void SetUp() override { registry_ = std::move(*Registry::open(path())); }
  std::string path() const { return dir_.file("registry.db"); }
  SnapshotPtr snapshot() { return *registry_->loadSnapshot(); }
  std::vector<Change> apply(std::vector<Object> objects, CidrChoice cidr = {}) {
    auto changes = registry_->apply(objects, cidr);
    EXPECT_TRUE(changes) << changes.error().message;
    return changes ? *changes : std::vector<Change>{};
  }

  testing::TempDir dir_;
  std::unique_ptr<Registry> registry_;
};

TEST_F(RegistryTest, AppliesTheSeedExampleAndResolvesEndpoints) {
  auto changes = apply(
      {web("service-test"), pod("server-pod-1", "10.0.1.2"), pod("server-pod-2", "10.0.2.2")});
  ASSERT_EQ(changes.size(), 3u);
  EXPECT_EQ(changes[0].action, Change::Action::kCreated);
  auto current = snapshot();
  const auto* entry = current->findService("default", "service-test");
  ASSERT_NE(entry, nullptr);
  EXPECT_EQ(entry->service.cluster_ip, ip("10.96.0.1"));
  ASSERT_EQ(entry->endpoints.size(), 2u);
  EXPECT_TRUE(entry->endpoints[0].ready);  // no readinessProbe: ready as registered
  EXPECT_EQ(current->serviceCidr()->toString(), "10.96.0.0/12");
}

TEST_F(RegistryTest, AMetaRowEditedByHandIsAnErrorNotAnException) {
  apply({web()});
  sqlite3* other = nullptr;
  ASSERT_EQ(sqlite3_open(path().c_str(), &other), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(other, "UPDATE meta SET value = 'x' WHERE key = 'committed_ms'", nullptr,
                         nullptr, nullptr),
            SQLITE_OK);
  Result<SnapshotPtr> loaded = Error{};
  EXPECT_NO_THROW(loaded = registry_->loadSnapshot());
  ASSERT_FALSE(loaded);
  EXPECT_NE(loaded.error().message.find("committed_ms"), std::string::npos);
  ASSERT_EQ(sqlite3_exec(other, "UPDATE meta SET value = '17' WHERE key = 'committed_ms'", nullptr,
                         nullptr, nullptr),
            SQLITE_OK);
  sqlite3_close(other);
  ASSERT_TRUE(registry_->loadSnapshot());
}

TEST_F(RegistryTest, ReapplyingIsUnchangedAndKeepsTheClusterIp) {
  apply({web()});
  auto version = snapshot()->version();
  auto changes = apply({web()});
  EXPECT_EQ(changes[0].action, Change::Action::kUnchanged);
  EXPECT_EQ(snapshot()->version(), version);
  auto changed = web();
  changed.ports[0].port = 81;
  EXPECT_EQ(apply({changed})[0].action, Change::Action::kConfigured);
  EXPECT_EQ(snapshot()->findService("default", "web")->service.cluster_ip, ip("10.96.0.1"));
  EXPECT_GT(snapshot()->version(), version);
}

TEST_F(RegistryTest, ClusterIpIsStableAcrossReopenAndReleasedOnDelete) {
  apply({web("a"), web("b")});
  registry_ = std::move(*Registry::open(path()));
  EXPECT_EQ(snapshot()->findService("default", "b")->service.cluster_ip, ip("10.96.0.2"));
  auto removed = registry_->remove({ObjectRef{ObjectKind::kService, "default", "a"}});
  ASSERT_TRUE(removed);
  EXPECT_EQ((*removed)[0].action, Change::Action::kDeleted);
  apply({web("c")});
  EXPECT_EQ(snapshot()->findService("default", "c")->service.cluster_ip, ip("10.96.0.1"));
}

TEST_F(RegistryTest, RequestedClusterIpMustBeInsideTheCidrAndFree) {
  auto requested = web("a");
  requested.cluster_ip = ip("10.96.0.10");
  apply({requested});
  auto taken = web("b");
  taken.cluster_ip = ip("10.96.0.10");
  auto result = registry_->apply({taken}, {});
  ASSERT_FALSE(result);
  EXPECT_EQ(result.error().kind, ErrorKind::kConflict);
  EXPECT_NE(result.error().message.find("already allocated to Service default/a"),
            std::string::npos);
  auto outside = web("c");
  outside.cluster_ip = ip("192.168.0.1");
  result = registry_->apply({outside}, {});
  ASSERT_FALSE(result);
  EXPECT_EQ(result.error().field, "spec.clusterIP");
  EXPECT_NE(result.error().message.find("outside the service CIDR"), std::string::npos);
}

TEST_F(RegistryTest, RequestedAddressesAreClaimedBeforeAllocation) {
  auto later = web("b");
  later.cluster_ip = ip("10.96.0.1");
  apply({web("a"), later});
  EXPECT_EQ(snapshot()->findService("default", "a")->service.cluster_ip, ip("10.96.0.2"));
}

TEST_F(RegistryTest, ClusterIpIsImmutable) {
  apply({web()});
  auto moved = web();
  moved.cluster_ip = ip("10.96.0.9");
  auto result = registry_->apply({moved}, {});
  ASSERT_FALSE(result);
  EXPECT_NE(result.error().message.find("immutable"), std::string::npos);
  auto headless = web();
  headless.headless = true;
  EXPECT_FALSE(registry_->apply({headless}, {}));
}

TEST_F(RegistryTest, AFailedApplyChangesNothing) {
  apply({web("a")});
  auto before = snapshot();
  auto broken = pod("bad", "10.0.0.9");
  broken.name = "Bad_Name";
  auto result = registry_->apply({web("b"), pod("p", "10.0.0.1"), broken}, {});
  ASSERT_FALSE(result);
  // A registry-level failure late in the input, after earlier objects were written.
  auto conflicting = web("d");
  conflicting.cluster_ip = ip("10.96.0.1");
  size_t failed = 99;
  result = registry_->apply({web("c"), pod("q", "10.0.0.2"), conflicting}, {}, &failed);
  ASSERT_FALSE(result);
  EXPECT_EQ(failed, 2u);
  auto after = snapshot();
  EXPECT_EQ(after->version(), before->version());
  EXPECT_TRUE(std::ranges::equal(after->services(), before->services()));
  EXPECT_TRUE(after->pods().empty());
}

TEST_F(RegistryTest, DuplicateObjectsInOneInputAreRejected) {
  auto result = registry_->apply({web("a"), web("a")}, {});
  ASSERT_FALSE(result);
  EXPECT_NE(result.error().message.find("more than once"), std::string::npos);
}

TEST_F(RegistryTest, ServiceCidrIsRememberedAndAConflictingOneRefused) {
  CidrChoice small{Cidr::parse("10.100.0.0/16"), "flag --service-cidr"};
  apply({web("a")}, small);
  EXPECT_EQ(snapshot()->findService("default", "a")->service.cluster_ip, ip("10.100.0.1"));
  apply({web("b")});  // no explicit CIDR: the registry's is used
  EXPECT_EQ(snapshot()->findService("default", "b")->service.cluster_ip, ip("10.100.0.2"));
  CidrChoice other{Cidr::parse("10.96.0.0/12"), "environment SVCBOX_SERVICE_CIDR"};
  auto result = registry_->apply({web("c")}, other);
  ASSERT_FALSE(result);
  EXPECT_EQ(result.error().kind, ErrorKind::kConflict);
  EXPECT_NE(result.error().message.find("environment SVCBOX_SERVICE_CIDR asks for 10.96.0.0/12"),
            std::string::npos);
}

TEST_F(RegistryTest, PodReadinessFollowsTheProbeRules) {
  auto probed = pod("probed", "10.0.0.2");
  Probe probe;
  probe.port = PortRef{8080, {}};
  probed.readiness_probe = probe;
  apply({pod("plain", "10.0.0.1"), probed});
  EXPECT_TRUE(snapshot()->findPod("default", "plain")->readiness.ready);
  EXPECT_FALSE(snapshot()->findPod("default", "probed")->readiness.ready);

  // The prober's verdict survives an unchanged re-apply and a label-only change...
  ASSERT_TRUE(
      *registry_->setPodReadiness("default", "probed", Readiness{true, "probe succeeded", 1}));
  EXPECT_FALSE(
      *registry_->setPodReadiness("default", "probed", Readiness{true, "probe succeeded", 2}));
  auto relabelled = probed;
  relabelled.labels["tier"] = "front";
  apply({relabelled});
  EXPECT_TRUE(snapshot()->findPod("default", "probed")->readiness.ready);
  // ...but not a change of what the probe looks at.
  auto moved = relabelled;
  moved.ips = {ip("10.0.0.3")};
  apply({moved});
  EXPECT_FALSE(snapshot()->findPod("default", "probed")->readiness.ready);
}

TEST_F(RegistryTest, UnderTheDefaultTcpProbePodsWithoutAProbeStartNotReady) {
  apply({pod("before", "10.0.0.1")});
  ASSERT_TRUE(registry_->setDefaultProbe(DefaultProbe::kTcp));
  apply({pod("after", "10.0.0.2")});
  EXPECT_TRUE(snapshot()->findPod("default", "before")->readiness.ready);
  const auto& after = snapshot()->findPod("default", "after")->readiness;
  EXPECT_FALSE(after.ready);
  EXPECT_EQ(after.reason, kAwaitingDefaultProbe);
  ASSERT_TRUE(registry_->setDefaultProbe(DefaultProbe::kNone));
  apply({pod("later", "10.0.0.3")});
  EXPECT_EQ(snapshot()->findPod("default", "later")->readiness.reason, kNoReadinessProbe);
}

TEST_F(RegistryTest, ReadinessVerdictsCommitTogetherAndStampTheSnapshot) {
  apply({pod("a", "10.0.0.1"), pod("b", "10.0.0.2")});
  auto before = snapshot();
  EXPECT_GT(before->committedMs(), 0);
  std::vector<ReadinessUpdate> updates = {{"default", "a", Readiness{false, "probe failed", 7}},
                                          {"default", "b", Readiness{false, "probe failed", 7}},
                                          {"default", "gone", Readiness{false, "x", 7}}};
  EXPECT_EQ(*registry_->setPodReadiness(updates), 2u);
  auto after = snapshot();
  EXPECT_EQ(after->version(), before->version() + 1);
  EXPECT_GE(after->committedMs(), before->committedMs());
  EXPECT_FALSE(after->findPod("default", "b")->readiness.ready);
  EXPECT_EQ(*registry_->setPodReadiness(updates), 0u);
  EXPECT_EQ(snapshot()->version(), after->version());
}

TEST_F(RegistryTest, EndpointSetsRoundTrip) {
  auto service = web("db");
  service.selector.reset();
  EndpointSet set;
  set.name = "db";
  set.service_name = "db";
  set.groups = {EndpointGroup{{EndpointAddress{ip("192.168.1.5"), true, "", ""},
                               EndpointAddress{ip("192.168.1.6"), false, "", "db-1"}},
                              {EndpointPort{"", 5432, Protocol::kTcp}}}};
  apply({service, set});
  EXPECT_EQ(apply({service, set})[1].action, Change::Action::kUnchanged);
  auto current = snapshot();
  ASSERT_EQ(current->endpointSets().size(), 1u);
  EXPECT_EQ(current->endpointSets()[0].groups, set.groups);
  const auto& endpoints = current->findService("default", "db")->endpoints;
  ASSERT_EQ(endpoints.size(), 2u);
  EXPECT_EQ(endpoints[0].ports[0], 5432);
}

TEST_F(RegistryTest, ARebuildRereadsOnlyChangedRowsAndSharesTheRest) {
  apply({web(), pod("a", "10.0.0.1"), pod("b", "10.0.0.2"), pod("c", "10.0.0.3")});
  auto reader = std::move(*Registry::open(path()));
  auto first = *reader->loadSnapshot();
  ASSERT_TRUE(*registry_->setPodReadiness("default", "b", Readiness{false, "probe failed", 5}));
  auto moved = pod("c", "10.0.0.9");
  apply({moved});
  ASSERT_TRUE(registry_->remove({ObjectRef{ObjectKind::kPod, "default", "a"}}));
  apply({pod("d", "10.0.0.4")});
  auto second = *reader->loadSnapshot();
  ASSERT_EQ(second->pods().size(), 3u);
  EXPECT_EQ(second->findPod("default", "a"), nullptr);
  EXPECT_FALSE(second->findPod("default", "b")->readiness.ready);
  EXPECT_EQ(second->findPod("default", "c")->ips[0], ip("10.0.0.9"));
  EXPECT_NE(second->findPod("default", "d"), nullptr);
  const auto& endpoints = second->findService("default", "web")->endpoints;
  ASSERT_EQ(endpoints.size(), 3u);
  EXPECT_EQ(endpoints[2].ip, ip("10.0.0.9"));
  // What did not change is the very object the previous snapshot held.
  auto third = *reader->loadSnapshot();
  EXPECT_EQ(third->findPod("default", "d"), second->findPod("default", "d"));
  // And a fresh handle builds the same registry from scratch.
  auto fresh = *registry_->loadSnapshot();
  ASSERT_EQ(fresh->pods().size(), third->pods().size());
  for (size_t i = 0; i < fresh->pods().size(); ++i) {
    EXPECT_EQ(*fresh->pods()[i], *third->pods()[i]);
  }
  EXPECT_TRUE(std::ranges::equal(fresh->services(), third->services()));
}

TEST_F(RegistryTest, RowsWrittenSinceTheLastRebuildArePlacedInNameOrder) {
  apply({web(), pod("b", "10.0.0.2"), pod("d", "10.0.0.4")});
  auto reader = std::move(*Registry::open(path()));
  auto first = *reader->loadSnapshot();
  // Without a delete a rebuild reads only the rows written since: new ones go where their
  // names sort, changed ones stay in place.
  apply({pod("a", "10.0.0.1"), pod("c", "10.0.0.3"), pod("e", "10.0.0.5")});
  ASSERT_TRUE(*registry_->setPodReadiness("default", "d", Readiness{false, "probe failed", 5}));
  auto second = *reader->loadSnapshot();
  std::vector<std::string> names;
  for (const auto& shared : second->pods()) names.push_back(shared->name);
  EXPECT_EQ(names, (std::vector<std::string>{"a", "b", "c", "d", "e"}));
  EXPECT_EQ(second->findPod("default", "b"), first->findPod("default", "b"));
  EXPECT_FALSE(second->findPod("default", "d")->readiness.ready);
  auto fresh = *Registry::open(path()).value()->loadSnapshot();
  ASSERT_EQ(fresh->pods().size(), second->pods().size());
  for (size_t i = 0; i < fresh->pods().size(); ++i)
    EXPECT_EQ(*fresh->pods()[i], *second->pods()[i]);
  EXPECT_TRUE(std::ranges::equal(fresh->services(), second->services()));
  EXPECT_EQ(second->findService("default", "web")->endpoints.size(), 5u);
}

TEST_F(RegistryTest, DeletingMissingObjectsReportsNotFound) {
  auto result = registry_->remove({ObjectRef{ObjectKind::kPod, "default", "ghost"}});
  ASSERT_TRUE(result);
  EXPECT_EQ((*result)[0].action, Change::Action::kNotFound);
}

TEST_F(RegistryTest, ABusyRegistryIsReportedAsBusy) {
  apply({web("a")});
  sqlite3* other = nullptr;
  ASSERT_EQ(sqlite3_open(path().c_str(), &other), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(other, "BEGIN IMMEDIATE", nullptr, nullptr, nullptr), SQLITE_OK);
  auto quick = Registry::open(path(), Registry::Options{100, false});
  ASSERT_TRUE(quick);
  auto result = (*quick)->apply({web("b")}, {});
  sqlite3_exec(other, "ROLLBACK", nullptr, nullptr, nullptr);
  sqlite3_close(other);
  ASSERT_FALSE(result);
  EXPECT_EQ(result.error().kind, ErrorKind::kBusy);
  EXPECT_NE(result.error().message.find("registry busy"), std::string::npos);
  // Reads go on while a writer holds the lock (WAL).
  auto snapshot = (*quick)->loadSnapshot();
  EXPECT_TRUE(snapshot) << (snapshot ? "" : snapshot.error().message);
}

TEST(RegistryOpenTest, RefusesANewerSchemaAndForeignFiles) {
  testing::TempDir dir;
  {
    ASSERT_TRUE(Registry::open(dir.file("a.db")));
    sqlite3* db = nullptr;
    sqlite3_open(dir.file("a.db").c_str(), &db);
    sqlite3_exec(db, "PRAGMA user_version = 99", nullptr, nullptr, nullptr);
    sqlite3_close(db);
  }
  auto newer = Registry::open(dir.file("a.db"));
  ASSERT_FALSE(newer);
  EXPECT_NE(newer.error().message.find("newer than this svcbox"), std::string::npos);

  FILE* file = fopen(dir.file("b.db").c_str(), "w");
  fputs("this is not a database, just a text file that is long enough to look like a header....\n",
        file);
  fclose(file);
  auto foreign = Registry::open(dir.file("b.db"));
  ASSERT_FALSE(foreign);
  EXPECT_NE(foreign.error().message.find("not a usable svcbox registry"), std::string::npos);

  auto missing_folder = Registry::open(dir.file("no/such/folder/c.db"));
  ASSERT_FALSE(missing_folder);
  EXPECT_NE(missing_folder.error().message.find("cannot open registry"), std::string::npos);
}

TEST(RegistryOpenTest, MigratesANewFileToTheCurrentSchema) {
  testing::TempDir dir;
  ASSERT_TRUE(Registry::open(dir.file("a.db")));
  sqlite3* db = nullptr;
  sqlite3_open(dir.file("a.db").c_str(), &db);
  sqlite3_stmt* statement = nullptr;
  sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &statement, nullptr);
  ASSERT_EQ(sqlite3_step(statement), SQLITE_ROW);
  EXPECT_EQ(sqlite3_column_int(statement, 0), kSchemaVersion);
  sqlite3_finalize(statement);
  sqlite3_prepare_v2(db, "PRAGMA journal_mode", -1, &statement, nullptr);
  ASSERT_EQ(sqlite3_step(statement), SQLITE_ROW);
  EXPECT_STREQ(reinterpret_cast<const char*>(sqlite3_column_text(statement, 0)), "wal");
  sqlite3_finalize(statement);
  sqlite3_close(db);
}

TEST_F(RegistryTest, EachRegistryHasItsOwnUuid) {
  testing::TempDir other_dir;
  auto other = std::move(*Registry::open(other_dir.file("registry.db")));
  EXPECT_EQ(registry_->uuid().size(), 36u);
  EXPECT_NE(registry_->uuid(), other->uuid());
  auto reopened = std::move(*Registry::open(path()));
  EXPECT_EQ(reopened->uuid(), registry_->uuid());
}

TEST_F(RegistryTest, AWriteToADeletedFileIsRefusedAndWritesNothing) {
  apply({web()});
  ASSERT_EQ(::unlink(path().c_str()), 0);
  EXPECT_EQ(registry_->checkFile().error().kind, ErrorKind::kReplaced);
  auto refused = registry_->apply({web("lost")}, {});
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error().kind, ErrorKind::kReplaced);
  EXPECT_NE(refused.error().message.find(path() + " is gone"), std::string::npos)
      << refused.error().message;
  EXPECT_EQ(registry_->loadSnapshot().error().kind, ErrorKind::kReplaced);
}

TEST_F(RegistryTest, AFileReplacedAtThePathIsRefused) {
  apply({web()});
  testing::TempDir elsewhere;
  { auto fresh = std::move(*Registry::open(elsewhere.file("new.db"))); }
  std::filesystem::rename(elsewhere.file("new.db"), path());
  auto refused = registry_->remove({ObjectRef{ObjectKind::kService, "default", "web"}});
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error().kind, ErrorKind::kReplaced);
  EXPECT_NE(refused.error().message.find("is now another file"), std::string::npos)
      << refused.error().message;
}

TEST_F(RegistryTest, AnotherRegistryCopiedOverInPlaceIsRefusedByItsUuid) {
  apply({web()});
  testing::TempDir elsewhere;
  std::string other_uuid;
  {
    auto other = std::move(*Registry::open(elsewhere.file("other.db")));
    other_uuid = other->uuid();
  }
  // Same inode, other content: what `cp other.db registry.db` does.
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(path().c_str(), &db), SQLITE_OK);
  std::string sql = "UPDATE meta SET value = '" + other_uuid + "' WHERE key = 'registry_uuid'";
  ASSERT_EQ(sqlite3_exec(db, sql.c_str(), nullptr, nullptr, nullptr), SQLITE_OK);
  sqlite3_close(db);
  EXPECT_TRUE(registry_->checkFile());  // the inode is the same
  auto refused = registry_->setPodReadiness({});
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error().kind, ErrorKind::kReplaced);
  EXPECT_NE(refused.error().message.find("copied over in place"), std::string::npos)
      << refused.error().message;
}

TEST_F(RegistryTest, PeekGenerationReadsWithoutCreatingAnything) {
  apply({web()});
  EXPECT_EQ(*Registry::peekGeneration(path()), 1u);
  EXPECT_FALSE(Registry::peekGeneration(dir_.file("absent.db")));
  EXPECT_FALSE(std::filesystem::exists(dir_.file("absent.db")));
}

TEST_F(RegistryTest, ARowIdReusedByAnotherObjectDoesNotLoseEndpoints) {
  auto labelled = [](Pod p, const std::string& app) {
    p.labels = {{"app", app}};
    return p;
  };
  Service selecting = web("s");
  selecting.selector = Labels{{"app", "x"}};
  apply({selecting, labelled(pod("p00", "10.244.0.1"), "x"),
         labelled(pod("p01", "10.244.0.2"), "x"), labelled(pod("p02", "10.244.0.3"), "x"),
         labelled(pod("p03", "10.244.0.4"), "x"), labelled(pod("zz", "10.244.0.5"), "y")});
  ASSERT_EQ(snapshot()->findService("default", "s")->endpoints.size(), 4u);
  // Between two snapshots: the newest row goes and a pod named before every other takes its id
  // (SQLite hands the highest id out again), then a selected pod changes.
  ASSERT_TRUE(registry_->remove({ObjectRef{ObjectKind::kPod, "default", "zz"}}));
  apply({labelled(pod("a00", "10.244.0.6"), "y")});
  ASSERT_EQ(snapshot()->findService("default", "s")->endpoints.size(), 4u);
  Pod relabelled = labelled(pod("p00", "10.244.0.1"), "x");
  relabelled.labels["tier"] = "web";
  apply({relabelled});
  EXPECT_EQ(snapshot()->findService("default", "s")->endpoints.size(), 4u);
}

}  // namespace
}  // namespace svcbox::store

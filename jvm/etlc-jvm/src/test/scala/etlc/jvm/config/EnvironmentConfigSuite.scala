package etlc.jvm.config

import java.nio.charset.StandardCharsets.UTF_8
import java.nio.file.Paths

import scala.collection.immutable.ListMap

class EnvironmentConfigSuite extends munit.FunSuite {

  private def parse(json: String): EnvironmentConfig =
    EnvironmentConfig.read(Json.parse(json.getBytes(UTF_8), "env/x.json"))

  // A complete PostgreSQL profile's members.
  private val db = """"system": "postgres", "host": "h", "database": "d", "user": "u", "password": "vault://db#password""""

  private def failure(json: String): String =
    intercept[ConfigException](parse(json)).getMessage

  test("the local environment loads, its credentials kept as vault references") {
    val env = EnvironmentConfig.load(Paths.get("../../pipelines/env/local.json"))
    assertEquals(env.variables.get("data_dir"), Some("data/demo"))
    assertEquals(env.spark.get("spark.sql.shuffle.partitions"), Some("4"))
    assertEquals(env.etlc.sampleSize, 20L)
    assertEquals(env.etlc.triggerInterval, "1 second") // a default
    assertEquals(env.vault, FileVault("file", Some(".etlc/vault.json")))
    val crm = env.connections("crm").asInstanceOf[DatabaseProfile]
    assertEquals(crm.port, Some(Scalar(3306L)))
    assertEquals(crm.password, VaultRef("vault://services/mysql#password"))
    val lake = env.connections("lake").asInstanceOf[S3Profile]
    assertEquals(lake.pathStyleAccess, Some(Scalar(true)))
    assertEquals(lake.secretKey.map(_.reference), Some("vault://services/s3#secret_key"))
  }

  test("an empty file gets every default") {
    val env = parse("{}")
    assertEquals(env.etlc, EtlcSettings())
    assertEquals(env.vault, FileVault())
    assertEquals(env.variables, ListMap.empty[String, String])
  }

  test("scalars become the text the Python side makes of them") {
    val env = parse(
      """{"spark": {"a": true, "b": 4, "c": 0.5, "d": 5.0, "e": 1e20, "f": 0.00001, "g": "x",
        |"h": 123456789012345678901234567890}}""".stripMargin
    )
    assertEquals(
      env.spark,
      ListMap(
        "a" -> "true", "b" -> "4", "c" -> "0.5", "d" -> "5.0", "e" -> "1e+20", "f" -> "1e-05", "g" -> "x",
        "h" -> "123456789012345678901234567890"
      )
    )
    assertEquals(failure("""{"spark": {"a": null}}"""), "env/x.json: $.spark.a: expected string, number or boolean, got null")
  }

  test("unknown keys are rejected at every level") {
    assert(failure("""{"variabels": {}}""").startsWith("env/x.json: $: unknown key \"variabels\""))
    assert(failure("""{"etlc": {"stage": "x"}}""").startsWith("env/x.json: $.etlc: unknown key \"stage\""))
    assert(
      failure("""{"connections": {"db": {"system": "postgres", "hots": "h"}}}""")
        .startsWith("env/x.json: $.connections.db: unknown key \"hots\"")
    )
  }

  test("wrong types and missing keys name the path") {
    def port(value: String) =
      failure(s"""{"connections": {"db": {$db, "port": $value}}}""")
    assertEquals(port("70000"), "env/x.json: $.connections.db.port: must be at most 65535")
    assertEquals(port("true"), "env/x.json: $.connections.db.port: expected integer or string, got boolean")
    assert(port("\"54x\"").startsWith("env/x.json: $.connections.db.port: must match the pattern"))
    assertEquals(parse(s"""{"connections": {"db": {$db, "port": "5432"}}}""").connections("db"),
      DatabaseProfile("postgres", None, "h", Some(Scalar("5432")), "d", "u", VaultRef("vault://db#password")))
    assertEquals(failure("""{"etlc": {"sample_size": true}}"""), "env/x.json: $.etlc.sample_size: expected integer, got boolean")
    assertEquals(failure("""{"connections": {"db": {"host": "h"}}}"""), "env/x.json: $.connections.db: missing required key \"system\"")
    assertEquals(
      failure("""{"connections": {"db": {"system": "hunter2-oracle"}}}"""),
      "env/x.json: $.connections.db.system: not a known connection system (known: postgres, mysql, kafka, s3)"
    )
    assert(!failure("""{"vault": {"backend": "hunter2"}}""").contains("hunter2"))
  }

  test("a literal credential is refused without echoing it") {
    val profile = failure(s"""{"connections": {"db": {${db.replace("vault://db#password", "hunter2")}}}}""")
    assertEquals(profile, "env/x.json: $.connections.db.password: holds a literal credential; " +
      "store it with `etlc vault put <path>#<key>` and write vault://<path>#<key>")
    val variable = failure("""{"variables": {"crm_password": "hunter2"}}""")
    assert(variable.startsWith("env/x.json: $.variables.crm_password: holds a literal credential"), variable)
    val malformed = failure("""{"variables": {"x": "vault://no-key-hunter2"}}""")
    assertEquals(malformed, "env/x.json: $.variables.x: malformed vault reference: write vault://<path>#<key>")
    Seq(profile, variable, malformed).foreach(m => assert(!m.contains("hunter2"), m))
  }

  test("the vault takes its backend's option only") {
    assertEquals(parse("""{"vault": {"backend": "env", "prefix": "X_"}}""").vault, EnvVault("env", "X_"))
    assertEquals(parse("""{"vault": {"backend": "env"}}""").vault, EnvVault("env", "ETLC_SECRET_"))
    assertEquals(
      failure("""{"vault": {"backend": "env", "path": "v.json"}}"""),
      "env/x.json: $.vault: unknown key \"path\" (known: backend, prefix)"
    )
    val hadoop = parse("""{"vault": {"backend": "hadoop", "provider_path": "jceks://hdfs/u/e.jceks"}}""").vault
    assertEquals(hadoop, HadoopVault(providerPath = "jceks://hdfs/u/e.jceks"))
    assertEquals(
      failure("""{"vault": {"backend": "hadoop", "path": "v.json"}}"""),
      "env/x.json: $.vault: unknown key \"path\" (known: backend, provider_path, alias_prefix)"
    )
    assertEquals(
      failure("""{"vault": {"backend": "hadoop"}}"""),
      "env/x.json: $.vault: missing required key \"provider_path\""
    )
  }

  test("Python's float text") {
    assertEquals(Scalars.pythonFloat(0.1), "0.1")
    assertEquals(Scalars.pythonFloat(100.0), "100.0")
    assertEquals(Scalars.pythonFloat(1e16), "1e+16")
    assertEquals(Scalars.pythonFloat(1234567890123456.0), "1234567890123456.0")
    assertEquals(Scalars.pythonFloat(0.0001), "0.0001")
    assertEquals(Scalars.pythonFloat(-2.5e-7), "-2.5e-07")
  }
}

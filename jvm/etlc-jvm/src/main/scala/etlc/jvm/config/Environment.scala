package etlc.jvm.config

import java.nio.file.Path

import scala.collection.immutable.ListMap

/** An environment file (`pipelines/env/<env>.json`), as the Python side reads it
  * (`etlc/runtime/environment.py`): variables and Spark conf as text, etlc's settings with
  * the same defaults, the vault backend, and the connection profiles, typed per system.
  *
  * Credentials stay [[VaultRef]]s: the JVM side never resolves one, and a credential written
  * as a literal is refused here as it is there.
  */
final case class EnvironmentConfig(
    schemaRef: Option[String],
    description: Option[String],
    variables: ListMap[String, String],
    spark: ListMap[String, String],
    etlc: EtlcSettings,
    vault: VaultSettings,
    connections: ListMap[String, ConnectionProfile]
)

object EnvironmentConfig {

  def load(file: Path): EnvironmentConfig = read(Json.read(file))

  def read(node: Node): EnvironmentConfig = {
    val f = node.fields[EnvironmentConfig]
    val variables = f.optional("variables").map(texts).getOrElse(ListMap.empty[String, String])
    f.optional("variables").foreach(_.members.foreach { case (name, value) => Credentials.check(name, value) })
    EnvironmentConfig(
      schemaRef = f.optString("$schema"),
      description = f.optString("description"),
      variables = variables,
      spark = f.optional("spark").map(texts).getOrElse(ListMap.empty[String, String]),
      etlc = f.optional("etlc").map(EtlcSettings.read).getOrElse(EtlcSettings()),
      vault = f.optional("vault").map(VaultSettings.read).getOrElse(VaultSettings()),
      connections = f
        .optional("connections")
        .map(_.members.map { case (name, profile) => name -> ConnectionProfile.read(profile) })
        .getOrElse(ListMap.empty[String, ConnectionProfile])
    )
  }

  /** An object of scalars as text, the way the Python side turns them into Spark conf. */
  private[config] def texts(node: Node): ListMap[String, String] =
    node.members.map { case (k, v) => k -> Scalars.text(v) }
}

/** etlc's own settings (the `etlc` object); defaults are `Settings`' in environment.py. */
final case class EtlcSettings(
    stageDir: String = ".etlc/stage",
    avroBoundary: Boolean = true,
    sampleSize: Int = 20,
    keepStage: Boolean = false,
    sparkLogLevel: String = "WARN",
    deadLetterDir: String = ".etlc/dead-letter",
    checkpointDir: String = ".etlc/checkpoints",
    triggerInterval: String = "1 second",
    memoryWarningFraction: Double = 0.8,
    retryResetAfter: String = "10 minutes"
)

object EtlcSettings {
  def read(node: Node): EtlcSettings = {
    val f = node.fields[EtlcSettings]
    val d = EtlcSettings()
    EtlcSettings(
      stageDir = f.optString("stage_dir").getOrElse(d.stageDir),
      avroBoundary = f.optBoolean("avro_boundary").getOrElse(d.avroBoundary),
      sampleSize = f.optInt("sample_size").getOrElse(d.sampleSize),
      keepStage = f.optBoolean("keep_stage").getOrElse(d.keepStage),
      sparkLogLevel = f.optString("spark_log_level").getOrElse(d.sparkLogLevel),
      deadLetterDir = f.optString("dead_letter_dir").getOrElse(d.deadLetterDir),
      checkpointDir = f.optString("checkpoint_dir").getOrElse(d.checkpointDir),
      triggerInterval = f.optString("trigger_interval").getOrElse(d.triggerInterval),
      memoryWarningFraction = f.optDouble("memory_warning_fraction").getOrElse(d.memoryWarningFraction),
      retryResetAfter = f.optString("retry_reset_after").getOrElse(d.retryResetAfter)
    )
  }
}

/** Where secrets come from: the encrypted vault file (`path`), environment variables for CI
  * systems that inject secrets (`prefix`), or Hadoop credential providers for YARN
  * (`provider_path`, `alias_prefix`). Only the chosen backend's own options are accepted.
  */
final case class VaultSettings(
    backend: String = "file",
    path: Option[String] = None,
    prefix: Option[String] = None,
    providerPath: Option[String] = None,
    aliasPrefix: Option[String] = None
)

object VaultSettings {
  private val Options =
    ListMap("file" -> Seq("path"), "env" -> Seq("prefix"), "hadoop" -> Seq("provider_path", "alias_prefix"))

  def read(node: Node): VaultSettings = {
    val f = node.fields[VaultSettings]
    val backend = f.optional("backend").map(_.oneOf(Options.keys.toSeq, "vault backend")).getOrElse("file")
    val own = Options(backend)
    Options.values.flatten.filter(key => !own.contains(key) && f.has(key)).foreach { key =>
      f.required(key).fail(s"not an option of the `$backend` backend (it takes ${own.map(k => s"`$k`").mkString(", ")})")
    }
    if (backend == "hadoop" && !f.has("provider_path")) node.fail("missing required key \"provider_path\"")
    VaultSettings(backend, f.optString("path"), f.optString("prefix"), f.optString("provider_path"), f.optString("alias_prefix"))
  }
}

/** A `vault://<path>#<key>` reference: the JVM side carries it, never the secret it names. */
final case class VaultRef(reference: String) extends JsonScalar {
  def json: Any = reference
  override def toString: String = reference
}

object VaultRef {
  // The shape `etlc lint` (E502) and the vault accept.
  private val Shape = "vault://[A-Za-z0-9_.\\-/]+#[A-Za-z0-9_.\\-]+".r
  private val MaxLength = 256

  def looksLike(text: String): Boolean = text.startsWith("vault://")

  def read(node: Node): VaultRef = {
    if (!node.isString) node.fail(s"expected a vault reference (vault://<path>#<key>), got ${node.kind}")
    val text = node.string
    // Neither message echoes the text: a literal here is most likely the secret itself.
    if (!looksLike(text))
      node.fail("holds a literal credential; store it with `etlc vault put <path>#<key>` and write vault://<path>#<key>")
    if (text.length > MaxLength || !Shape.matches(text))
      node.fail("malformed vault reference: write vault://<path>#<key>")
    VaultRef(text)
  }
}

private[config] object Credentials {
  // environment.py's CREDENTIAL_NAME: names under which only a vault reference may stand.
  private val Name = "(?i).*(pass(word|wd)?|secret|token|api[_-]?key|access[_-]?key|private[_-]?key|credentials?)$".r

  def isCredentialName(name: String): Boolean = Name.matches(name)

  /** A variable holding a reference must hold a well-formed one, and one named like a
    * credential must hold a reference.
    */
  def check(name: String, value: Node): Unit =
    if (value.isString && VaultRef.looksLike(value.string)) VaultRef.read(value)
    else if (isCredentialName(name)) VaultRef.read(value)
}

/** JSON scalars as the text the Python side makes of them (`str(value)`, booleans lower case). */
private[config] object Scalars {

  def text(node: Node): String = {
    val json = node.json
    if (json.isTextual) json.textValue
    else if (json.isBoolean) json.booleanValue.toString
    // As written: `5` is an int to Python, `5.0` a float, whatever their values.
    else if (json.isIntegralNumber) json.bigIntegerValue.toString
    else if (json.isNumber) pythonFloat(json.doubleValue)
    else node.fail(s"expected string, number or boolean, got ${node.kind}")
  }

  /** Python's `repr(float)`: shortest digits, fixed notation for exponents -4..15. */
  private[config] def pythonFloat(d: Double): String =
    if (d.isNaN) "nan"
    else if (d.isInfinite) (if (d > 0) "inf" else "-inf")
    else if (d == 0) (if (1 / d < 0) "-0.0" else "0.0")
    else {
      val decimal = new java.math.BigDecimal(java.lang.Double.toString(d)).stripTrailingZeros
      val digits = decimal.unscaledValue.abs.toString
      val exponent = digits.length - 1 - decimal.scale
      val sign = if (d < 0) "-" else ""
      if (exponent >= -4 && exponent < 16) {
        val plain = decimal.abs.toPlainString
        sign + (if (plain.contains('.')) plain else plain + ".0")
      } else {
        val mantissa = if (digits.length == 1) digits else s"${digits.head}.${digits.tail}"
        f"$sign${mantissa}e${if (exponent < 0) "-" else "+"}${math.abs(exponent)}%02d"
      }
    }
}

/** A named connection profile; the `system` member chooses the class. */
sealed trait ConnectionProfile {
  def system: String
}

object ConnectionProfile {
  private val kinds = ListMap[String, Node => ConnectionProfile](
    "postgres" -> DatabaseProfile.read,
    "mysql" -> DatabaseProfile.read,
    "kafka" -> KafkaProfile.read,
    "s3" -> S3Profile.read
  )

  val systems: Vector[String] = kinds.keys.toVector

  def read(node: Node): ConnectionProfile = {
    val system = node.members.getOrElse("system", node.fail("missing required key \"system\""))
    kinds(system.oneOf(systems, "connection system"))(node)
  }

  /** Client properties passed through as text (`properties` of a profile). */
  private[config] def properties(f: Fields): ListMap[String, String] =
    f.optional("properties").map(EnvironmentConfig.texts).getOrElse(ListMap.empty[String, String])
}

final case class DatabaseProfile(
    system: String,
    description: Option[String],
    host: Option[String],
    port: Option[Int],
    database: Option[String],
    user: Option[String],
    password: Option[VaultRef],
    properties: ListMap[String, String]
) extends ConnectionProfile

object DatabaseProfile {
  def read(node: Node): DatabaseProfile = {
    val f = node.fields[DatabaseProfile]
    DatabaseProfile(
      system = f.string("system"),
      description = f.optString("description"),
      host = f.optString("host"),
      port = f.optInt("port"),
      database = f.optString("database"),
      user = f.optString("user"),
      password = f.optional("password").map(VaultRef.read),
      properties = ConnectionProfile.properties(f)
    )
  }
}

/** A Kafka cluster; `username` is a user name or a vault reference, as the Python side allows. */
final case class KafkaProfile(
    system: String,
    description: Option[String],
    bootstrapServers: Option[String],
    securityProtocol: Option[String],
    saslMechanism: Option[String],
    username: Option[String],
    password: Option[VaultRef],
    properties: ListMap[String, String]
) extends ConnectionProfile

object KafkaProfile {
  def read(node: Node): KafkaProfile = {
    val f = node.fields[KafkaProfile]
    KafkaProfile(
      system = f.string("system"),
      description = f.optString("description"),
      bootstrapServers = f.optString("bootstrap_servers"),
      securityProtocol = f.optString("security_protocol"),
      saslMechanism = f.optString("sasl_mechanism"),
      username = f.optional("username").map(n => if (VaultRef.looksLike(n.string)) VaultRef.read(n).reference else n.string),
      password = f.optional("password").map(VaultRef.read),
      properties = ConnectionProfile.properties(f)
    )
  }
}

/** An S3 endpoint; the fields S3A takes and no others (the Python side refuses others too). */
final case class S3Profile(
    system: String,
    endpoint: Option[String],
    region: Option[String],
    pathStyleAccess: Option[Boolean],
    accessKey: Option[VaultRef],
    secretKey: Option[VaultRef],
    sessionToken: Option[VaultRef],
    properties: ListMap[String, String]
) extends ConnectionProfile

object S3Profile {
  def read(node: Node): S3Profile = {
    val f = node.fields[S3Profile]
    S3Profile(
      system = f.string("system"),
      endpoint = f.optString("endpoint"),
      region = f.optString("region"),
      pathStyleAccess = f.optBoolean("path_style_access"),
      accessKey = f.optional("access_key").map(VaultRef.read),
      secretKey = f.optional("secret_key").map(VaultRef.read),
      sessionToken = f.optional("session_token").map(VaultRef.read),
      properties = ConnectionProfile.properties(f)
    )
  }
}

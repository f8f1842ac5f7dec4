package etlc.jvm.config

import scala.collection.immutable.ListMap

/** Which class mirrors each object of `schemas/pipeline.schema.json`, by the object's place in
  * the schema (a JSON pointer). The drift test walks the schema and fails on an object that is
  * not bound here, on a binding to a place the schema no longer has, and on a property without
  * its field (or, where the schema closes the object, a field without its property).
  *
  * A step section's dispatch object (`extract_step`: only `type`) binds to all of its classes.
  */
object SchemaBindings {

  private val extracts = Seq(classOf[FilesExtract], classOf[S3Extract], classOf[JdbcExtract], classOf[KafkaExtract])
  private val transforms =
    Seq(
      classOf[Filter],
      classOf[Select],
      classOf[Derive],
      classOf[Aggregate],
      classOf[Join],
      classOf[Window],
      classOf[JvmStep]
    )
  private val loads = Seq(classOf[FilesLoad], classOf[S3Load], classOf[JdbcLoad], classOf[KafkaLoad])

  val all: ListMap[String, Seq[Class[_]]] = ListMap(
    "#" -> Seq(classOf[PipelineConfig]),
    "#/properties/retry" -> Seq(classOf[RetryConfig]),
    "#/$defs/extract_step" -> extracts,
    "#/$defs/transform_step" -> transforms,
    "#/$defs/load_step" -> loads,
    "#/$defs/files_extract" -> Seq(classOf[FilesExtract]),
    "#/$defs/files_extract/properties/options" -> Seq(classOf[ReadOptions]),
    "#/$defs/s3_extract" -> Seq(classOf[S3Extract]),
    "#/$defs/s3_extract/properties/options" -> Seq(classOf[ReadOptions]),
    "#/$defs/jdbc_extract" -> Seq(classOf[JdbcExtract]),
    "#/$defs/jdbc_extract/properties/partition" -> Seq(classOf[JdbcPartition]),
    "#/$defs/kafka_extract" -> Seq(classOf[KafkaExtract]),
    "#/$defs/filter" -> Seq(classOf[Filter]),
    "#/$defs/select" -> Seq(classOf[Select]),
    "#/$defs/derive" -> Seq(classOf[Derive]),
    "#/$defs/aggregate" -> Seq(classOf[Aggregate]),
    "#/$defs/join" -> Seq(classOf[Join]),
    "#/$defs/join/properties/within" -> Seq(classOf[JoinWithin]),
    "#/$defs/window" -> Seq(classOf[Window]),
    "#/$defs/window/properties/time" -> Seq(classOf[TimeWindow]),
    "#/$defs/window/properties/rows" -> Seq(classOf[RowWindow]),
    "#/$defs/jvm" -> Seq(classOf[JvmStep]),
    "#/$defs/files_load" -> Seq(classOf[FilesLoad]),
    "#/$defs/files_load/properties/options" -> Seq(classOf[WriteOptions]),
    "#/$defs/s3_load" -> Seq(classOf[S3Load]),
    "#/$defs/s3_load/properties/options" -> Seq(classOf[WriteOptions]),
    "#/$defs/jdbc_load" -> Seq(classOf[JdbcLoad]),
    "#/$defs/kafka_load" -> Seq(classOf[KafkaLoad])
  )

  private val profiles = Seq(classOf[DatabaseProfile], classOf[KafkaProfile], classOf[S3Profile])

  /** The same for `schemas/environment.schema.json`. One class may stand for several objects
    * of the schema: `VaultSettings` for every backend's, `DatabaseProfile` for PostgreSQL's and
    * MySQL's; its fields are then checked against all of their keys together.
    */
  val environmentSchema: ListMap[String, Seq[Class[_]]] = ListMap(
    "#" -> Seq(classOf[EnvironmentConfig]),
    "#/$defs/settings" -> Seq(classOf[EtlcSettings]),
    "#/$defs/vault" -> Seq(classOf[VaultSettings]),
    "#/$defs/file_vault" -> Seq(classOf[VaultSettings]),
    "#/$defs/env_vault" -> Seq(classOf[VaultSettings]),
    "#/$defs/hadoop_vault" -> Seq(classOf[VaultSettings]),
    "#/$defs/connection" -> profiles,
    "#/$defs/jdbc_profile" -> Seq(classOf[DatabaseProfile]),
    "#/$defs/kafka_profile" -> Seq(classOf[KafkaProfile]),
    "#/$defs/sasl_only" -> Seq(classOf[KafkaProfile]),
    "#/$defs/s3_profile" -> Seq(classOf[S3Profile])
  )

  /** The environment classes by name, also checked against environment.py. */
  val environment: ListMap[String, Class[_]] = ListMap(
    "environment" -> classOf[EnvironmentConfig],
    "etlc" -> classOf[EtlcSettings],
    "vault" -> classOf[VaultSettings],
    "postgres" -> classOf[DatabaseProfile],
    "mysql" -> classOf[DatabaseProfile],
    "kafka" -> classOf[KafkaProfile],
    "s3" -> classOf[S3Profile]
  )
}

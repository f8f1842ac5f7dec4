package etlc.jvm.config

class JsonNamesSuite extends munit.FunSuite {

  test("fields are the case class's parameters in snake_case, $schema renamed") {
    assertEquals(JsonNames.fields(classOf[RetryConfig]), Vector("max_retries", "delay_seconds"))
    assertEquals(JsonNames.fields(classOf[PipelineConfig]).head, "$schema")
    assertEquals(JsonNames.fields(classOf[KafkaExtract]).take(2), Vector("id", "type"))
  }

  test("every bound class's fields are read and dumped under the same names") {
    (PipelineSchema.bindings.values.flatten ++ EnvironmentSchema.bindings.values.flatten).foreach { cls =>
      JsonNames.fields(cls).foreach(name => assert(name.matches("[a-z_$][a-z0-9_]*"), s"${cls.getName}.$name"))
    }
  }

  test("a JSON path quotes keys that are not identifiers") {
    val path = JsonPath.Root / "spark" / "spark.sql.shuffle.partitions"
    assertEquals(path.toString, "$.spark[\"spark.sql.shuffle.partitions\"]")
    assertEquals((JsonPath.Root / "load").at(0).toString, "$.load[0]")
  }
}

//! The `datagen` connector (being written; rejected at CREATE SOURCE until then).

use arrow::datatypes::SchemaRef;

use super::{Connector, ConnectorOptions, OptionError, SplitReader};
use crate::error::ExecResult;

pub struct DatagenConnector;

impl DatagenConnector {
    pub fn new(_options: &ConnectorOptions, _schema: SchemaRef) -> Result<Self, OptionError> {
        Err(OptionError("connector 'datagen' is not available in this build".into()))
    }
}

impl Connector for DatagenConnector {
    fn splits(&self) -> usize {
        0
    }

    fn open(&self, _split: usize) -> ExecResult<Box<dyn SplitReader>> {
        Err(OptionError("connector 'datagen' is not available in this build".into()).into())
    }

    fn bounded(&self) -> bool {
        true
    }
}

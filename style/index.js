import './base.css';
import './filetree.css';
import './sshdialog.css';
import './room.css';
import './vision.css';
import './boardops.css';
import './boardfiles.css';
